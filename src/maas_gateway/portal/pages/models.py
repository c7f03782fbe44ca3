"""Models and docs: for each model I may use, its addresses, my limits on it, its price and examples.

The addresses use this gateway's origin as the browser reached it (``PortalServices.origin``: forwarded
headers only from trusted proxies); it is shown, never used to decide anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.responses import Response

from maas_gateway.portal.caller import caller
from maas_gateway.portal.context import PageContext
from maas_gateway.portal.examples import Example, examples
from maas_gateway.portal.navigation import Pages
from maas_gateway.portal.quota import WindowUse, window_uses
from maas_gateway.pricing import PriceVersion

__all__ = ["pages"]

pages = Pages()


@dataclass(frozen=True, slots=True)
class Address:
    how: str  # what selects the model at this address
    url: str  # the chat completions endpoint there


@dataclass(frozen=True, slots=True)
class ModelDocs:
    name: str
    addresses: list[Address]
    windows: list[WindowUse]
    price: PriceVersion | None  # the price version in effect now
    currency: str
    examples: list[Example]


def _port(origin: str) -> str:
    """``:8000`` when the origin names a port, else nothing (a host route keeps the same port)."""
    port = urlsplit(origin).port
    return f":{port}" if port is not None else ""


@pages.page("/models", title="Models", order=40)
async def models(context: PageContext) -> Response:
    identity = caller(context.me)
    services = context.services
    origin = services.origin(context.request.scope)
    scheme = urlsplit(origin).scheme
    now = services.clock()
    currency = services.config().pricing.currency
    limiter = services.limiter()
    documented: list[ModelDocs] = []
    for route in services.router().visible_to(identity):
        addresses = [Address(f'"model": "{route.name}" in the body', f"{origin}/v1/chat/completions")]
        addresses += [
            Address(f"the host {host}", f"{scheme}://{host}{_port(origin)}/v1/chat/completions")
            for host in route.hosts
        ]
        if route.path_prefix:
            addresses.append(
                Address(
                    f"the path prefix /{route.path_prefix}",
                    f"{origin}/{route.path_prefix}/v1/chat/completions",
                )
            )
        windows: list[WindowUse] = []
        if limiter is not None:
            found = await window_uses(limiter, identity.user, identity.tier, [route.name], now)
            windows = [window for window in found if window.model in (None, route.name)]
        documented.append(
            ModelDocs(
                route.name,
                addresses,
                windows,
                route.price_at(now),
                currency,
                examples(f"{origin}/v1", route.name),
            )
        )
    return context.render(
        "models.html",
        title="Models",
        models=documented,
        origin=origin,
        limits_on=limiter is not None,
    )
