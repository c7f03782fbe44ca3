"""Self-service keys: what a user may do to their own keys, whichever door they came through.

The self-service API (``/v1/keys``) and the portal's Keys and Playground pages both call these, so a key
is never stronger than the credential that asks for it (``key_policy``), another user's key id is a 404,
and an ephemeral key mints none, on every path alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from maas_gateway.auth.identity import Identity
from maas_gateway.auth.key_policy import Creator, grant_key, may_rotate, unknown_models
from maas_gateway.auth.key_repository import StoredKey, StoredUser, UserSource
from maas_gateway.auth.key_service import KeyService
from maas_gateway.auth.user_directory import UserDirectory
from maas_gateway.config.schema import GatewayConfig

__all__ = ["OwnKeys", "creator_of", "tier_models"]


def creator_of(identity: Identity) -> Creator:
    """The credential asking, as the key policy sees it."""
    # A token's expiry ends a session, not the keys it creates: those follow the tier's rules. The same
    # holds for a portal session.
    expires_at = None if identity.source in ("oidc", "portal") else identity.expires_at
    return Creator(identity.ephemeral, identity.models, expires_at)


def tier_models(config: GatewayConfig, tier: str) -> list[str]:
    """The models ``tier`` may use, in the configuration's order."""
    return [model.name for model in config.models if model.tiers is None or tier in model.tiers]


def _owner_source(identity: Identity) -> UserSource:
    if identity.source == "oidc":
        return "oidc"
    return "config" if identity.source == "config_key" else "admin"


class OwnKeys:
    """Create, rotate and revoke the caller's own keys through ``KeyService``, under the key policy."""

    def __init__(
        self,
        keys: KeyService,
        users: UserDirectory,
        config: Callable[[], GatewayConfig],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = keys
        self.users = users
        self.config = config
        self.clock = clock

    async def create(
        self,
        identity: Identity,
        *,
        name: str,
        models: Sequence[str] | None,
        lifetime: float | None,
        ephemeral: bool = False,
        team: str | None = None,
    ) -> tuple[str, StoredKey]:
        """A key for the caller, no stronger than their credential; ``lifetime`` None takes the default.
        ``team`` is one of the caller's teams, checked by the caller (``TeamActions.check_key_team``)."""
        config = self.config()
        if models is not None:
            unknown_models(models, [model.name for model in config.models])
        now = self.clock()
        grant = grant_key(
            creator_of(identity),
            lifetime=self.keys.lifetime(lifetime, ephemeral=ephemeral),
            requested_lifetime=lifetime is not None,
            models=models,
            tier=identity.tier,
            tier_models=tier_models(config, identity.tier),
            now=now,
        )
        owner = StoredUser(
            identity.user, identity.tier, identity.display_name, False, now, _owner_source(identity)
        )
        plaintext, key = await self.keys.create(
            identity.user,
            name=name,
            lifetime=grant.lifetime,
            ephemeral=ephemeral,
            models=grant.models,
            new_owner=owner,
            ends_by=grant.ends_by,
            team=team,
        )
        self.users.forget(identity.user)
        return plaintext, key

    async def rotate(
        self, identity: Identity, key_id: str, *, grace: float
    ) -> tuple[str, StoredKey, StoredKey]:
        """Replace one of the caller's keys (404 for anyone else's); the old one lives ``grace`` more."""
        old = await self.keys.owned(key_id, identity.user)
        may_rotate(creator_of(identity), key_models=old.models, key_ends_at=old.ends_at)
        return await self.keys.rotate(old, grace=grace)

    async def revoke(self, identity: Identity, key_id: str) -> StoredKey:
        """Revoke one of the caller's keys at once (404 for anyone else's)."""
        return await self.keys.revoke(key_id, owner=identity.user)

    async def revoke_all(self, identity: Identity) -> list[StoredKey]:
        """Revoke every active key of the caller."""
        page = await self.keys.list(owner=identity.user, page_size=10_000)
        return [await self.keys.revoke(key.key_id, owner=identity.user) for key in page.keys]
