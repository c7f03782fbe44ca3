"""What the portal's pages need to act through the shared services: who is acting, and the services'
errors as error pages.

An administrator's change made in the portal goes through ``AdminActions`` (the admin API's own path), so
it is checked and audited once; the audit entry names the signed-in administrator with the kind
``portal`` and the client's address as the gateway sees it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from maas_gateway.audit.entries import Actor
from maas_gateway.errors import GatewayError
from maas_gateway.portal.context import PageContext, PageError

__all__ = ["portal_actor", "shown_as_page"]

_TITLES = {400: "Not accepted", 403: "Not allowed", 404: "Not found", 409: "Already decided"}


def portal_actor(context: PageContext) -> Actor:
    """The signed-in user, as the actor of an audited change made from ``context``'s request."""
    return Actor(context.me.user, "portal", context.services.address(context.request.scope))


@contextlib.contextmanager
def shown_as_page(titles: dict[int, str] | None = None) -> Iterator[None]:
    """Turn a service's refusal (unknown object, lost race, bad value) into an error page with its
    sentence; ``titles`` names the page by status where the default title says too little."""
    try:
        yield
    except GatewayError as exc:
        status = exc.status_code
        title = (titles or {}).get(status) or _TITLES.get(status, "Something went wrong")
        raise PageError(status, title, exc.message, headers=exc.headers()) from None
