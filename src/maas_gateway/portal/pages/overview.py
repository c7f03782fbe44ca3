"""The developer's overview: my tier and what remains of each limit now, my models, my last calls."""

from __future__ import annotations

from starlette.responses import Response

from maas_gateway.auth.identity import Identity
from maas_gateway.portal.context import PageContext
from maas_gateway.portal.navigation import Pages
from maas_gateway.portal.quota import WindowUse, window_uses

__all__ = ["pages"]

pages = Pages()

_RECENT_CALLS = 10
_RECENT_SINCE = 7 * 86400.0  # seconds back that "last calls" looks


@pages.page("/", title="Overview", order=10)
async def overview(context: PageContext) -> Response:
    me = context.me
    services = context.services
    now = services.clock()
    models: list[str] = []
    windows: list[WindowUse] = []
    tier_known = me.tier is not None and me.tier in services.config().tiers
    if me.tier is not None:
        caller = Identity(user=me.user, tier=me.tier, key_id="portal", source="key")
        models = [route.name for route in services.router().visible_to(caller)]
        limiter = services.limiter()
        if limiter is not None:
            windows = await window_uses(limiter, me.user, me.tier, models, now)
    calls = await services.ledger.store.recent(me.user, since=now - _RECENT_SINCE, limit=_RECENT_CALLS)
    description = services.config().tiers[me.tier].description if tier_known and me.tier else ""
    return context.render(
        "overview.html",
        title="Overview",
        tier=me.tier,
        tier_known=tier_known,
        tier_description=description,
        limits_on=services.limiter() is not None,
        windows=windows,
        models=models,
        calls=calls,
    )
