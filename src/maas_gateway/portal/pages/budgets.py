"""The developer's teams and budgets: the teams I belong to, every budget that applies to me (my own, my
teams', my tier's, everyone's) with what is used and left now, and the alerts fired on them this window.

Only the signed-in user's: the page takes no parameter naming a user or a team, and alerts are read for
the owners of the budgets shown, so nobody sees another team's budget or alerts.
"""

from __future__ import annotations

from starlette.responses import Response

from maas_gateway.alerts.events import AlertRecord
from maas_gateway.auth.identity import Identity
from maas_gateway.portal.budgets import Budget, budgets_of, fired_alerts, owned_by_user
from maas_gateway.portal.context import PageContext
from maas_gateway.portal.navigation import Pages

__all__ = ["pages"]

pages = Pages()


@pages.page("/budgets", title="Teams & budgets", order=35)
async def budgets(context: PageContext) -> Response:
    me = context.me
    services = context.services
    now = services.clock()
    store = services.actions.teams.store
    team_names = await store.teams_of(me.user)
    teams = []
    for name in team_names:
        team = await store.get(name)
        if team is not None:  # deleted since the membership was read
            teams.append((team, len(await store.members(name))))
    shown: list[Budget] = []
    limiter = services.limiter()
    if limiter is not None:
        models: list[str] = []
        if me.tier is not None:
            caller = Identity(user=me.user, tier=me.tier, key_id="portal", source="key")
            models = [route.name for route in services.router().visible_to(caller)]
        owned = owned_by_user(limiter, me.user, me.tier, [team.name for team, _ in teams])
        shown = await budgets_of(limiter, owned, models, now)
    shown, records = await fired_alerts(services.alerts, shown, now)
    alerts = list({_once(record): record for record in reversed(records)}.values())[::-1]
    return context.render(
        "budgets.html",
        title="Teams & budgets",
        teams=teams,
        budgets=shown,
        alerts=alerts,
        limits_on=limiter is not None,
        alerts_on=services.alerts is not None,
    )


def _once(record: AlertRecord) -> tuple[str, str, int, int]:
    """An alert as its people see it: one per threshold and window, however many webhooks heard of it."""
    event = record.event
    return (event.user, event.limit_key, event.window_start, event.threshold)
