"""Who is acting, for the audit log, from what the admin API's authentication learnt about the call."""

from __future__ import annotations

from maas_gateway.admin.call_log import AdminCall
from maas_gateway.audit.entries import Actor

__all__ = ["ADMIN_KEY_ACTOR", "actor_of"]

ADMIN_KEY_ACTOR = "admin key"  # an entry's actor_kind (admin_key) tells it from a user of that name


def actor_of(call: AdminCall, address: str) -> Actor:
    """The admin key, or the user of an admin group's token, calling from ``address``."""
    if call.auth == "admin_key" or call.user is None:
        return Actor(ADMIN_KEY_ACTOR, "admin_key", address)
    return Actor(call.user, "oidc", address)
