"""The portal account of an identity provider's user, made or brought up to date at each sign-in.

The user is named exactly as their bearer tokens name them on the API (``identity_from_claims``: the
issuer's ``user_claim`` in its ``namespace``), so the portal and the API see one user with one set of
limits, keys and usage. Their users row goes through the same path as tokens (``UserDirectory``): created
with the tier their groups give, its tier following their groups, marked de-provisioned when no group maps
to a tier (they may still sign in; the overview says they have no tier). Their portal account has no
password (``NO_PASSWORD`` matches none) and its admin flag follows the issuer's ``admin_groups`` at every
sign-in. A local account of the same name (an issuer with ``namespace: ""``) keeps its own admin flag.
"""

from __future__ import annotations

from maas_gateway.auth.identity import Identity
from maas_gateway.auth.key_repository import StoredUser
from maas_gateway.auth.user_directory import UserDirectory
from maas_gateway.portal.accounts import Account, AccountStore

__all__ = ["NO_PASSWORD", "provider_account"]

NO_PASSWORD = "!identity-provider"  # not an argon2 hash: no password verifies against it  # noqa: S105


async def provider_account(
    identity: Identity, users: UserDirectory, accounts: AccountStore, now: float
) -> StoredUser | None:
    """Bring ``identity``'s users row and portal account up to date; their row afterwards (``None`` when
    it cannot be read: the database is unreachable)."""
    stored = await users.get(identity.user, now)
    await users.record_token(identity.user, identity.tier, identity.display_name, stored, now)
    owner = stored or StoredUser(
        identity.user, identity.tier, identity.display_name, False, now, "oidc", None, not identity.tier, now
    )
    account = await accounts.get(identity.user)
    if account is None:
        await accounts.create(Account(identity.user, NO_PASSWORD, identity.is_admin, now, now), owner)
    elif account.password_hash == NO_PASSWORD and account.is_admin != identity.is_admin:
        await accounts.set_admin(identity.user, identity.is_admin)
    users.forget(identity.user)
    return await users.get(identity.user, now)
