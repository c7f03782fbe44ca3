"""Who is signed in on a request: the session cookie, then the users row and the account, read fresh.

The users row comes through the shared ``UserDirectory``: its cache is short (``keys.cache_ttl``) and the
change watcher forgets a user as soon as another replica changes them, so disabling a user ends their
portal sessions within about a second everywhere, exactly as it stops their API keys. A session whose
user is disabled, gone, or without an account is deleted on the spot.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from maas_gateway.portal.cookies import SESSION_COOKIE
from maas_gateway.portal.services import PortalServices, PortalUser
from maas_gateway.portal.sessions import Session

__all__ = ["SignedIn", "signed_in"]


@dataclass(frozen=True, slots=True)
class SignedIn:
    user: PortalUser
    session: Session


async def signed_in(request: Request, services: PortalServices) -> SignedIn | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    session = await services.sessions.resume(token)
    if session is None:
        return None
    now = services.clock()
    stored = await services.users.get(session.user, now)
    account = await services.accounts.store.get(session.user) if stored is not None else None
    if stored is None or stored.disabled or account is None:
        await services.sessions.end_all(session.user)
        return None
    user = PortalUser(stored.user, stored.display_name, services.tier_of(stored, now), account.is_admin)
    return SignedIn(user, session)
