"""The signed-in user as an API caller: the identity the portal's pages act as on the shared services."""

from __future__ import annotations

from maas_gateway.auth.identity import Identity
from maas_gateway.portal.context import PageError
from maas_gateway.portal.services import PortalUser

__all__ = ["caller"]


def caller(me: PortalUser) -> Identity:
    """``me`` as a caller of the gateway, a 403 page when their account has no tier now.

    ``source="portal"``: a session's end is not a ceiling for the keys it creates (``own_keys``), and it
    is never ephemeral and never narrowed to a model list, so it may create and rotate keys within the
    tier's rules, exactly as an identity provider's token may through ``/v1/keys``.
    """
    if me.tier is None:
        raise PageError(
            403,
            "No tier",
            "Your account has no tier at the moment, so it cannot use the API. Ask an administrator.",
        )
    return Identity(
        user=me.user, tier=me.tier, key_id="portal", source="portal", display_name=me.display_name
    )
