"""Turning a credential string into an ``Identity``."""

from __future__ import annotations

import time
from collections.abc import Callable

from maas_gateway.auth.identity import Identity
from maas_gateway.auth.keys import KeyStore, hash_key
from maas_gateway.auth.memory_key_repository import InMemoryKeyRepository
from maas_gateway.auth.oidc import OIDCVerifier, looks_like_jwt
from maas_gateway.auth.user_directory import UserDirectory
from maas_gateway.auth.user_policy import UserPolicy
from maas_gateway.errors import AuthenticationError

__all__ = ["Authenticator"]


class Authenticator:
    """Authenticates API keys against a ``KeyStore`` and JWTs with an ``OIDCVerifier``; knows nothing of HTTP.

    Every identity then passes the users table (``UserDirectory``) and ``UserPolicy``: disabled users are
    refused, and the tier is decided there whatever the credential.
    """

    def __init__(
        self,
        keys: KeyStore,
        users: UserDirectory | None = None,
        policy: UserPolicy | None = None,
        oidc: OIDCVerifier | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._keys = keys
        self._users = users or UserDirectory(InMemoryKeyRepository(), ttl=1.0)
        self._policy = policy or UserPolicy()
        self._oidc = oidc
        self._clock = clock

    @property
    def oidc(self) -> OIDCVerifier | None:
        return self._oidc

    async def authenticate(self, credential: str) -> Identity:
        now = self._clock()
        if looks_like_jwt(credential):
            if self._oidc is None:
                raise AuthenticationError(
                    "Tokens are not accepted: no OIDC issuer is configured.", code="tokens_not_accepted"
                )
            identity = await self._oidc.verify(credential)
            stored = await self._users.get(identity.user, now)
            self._users.observe_token(identity.user, identity.tier, identity.display_name, stored, now)
            identity.tier = self._policy.tier(identity.user, "oidc", identity.tier, stored, now)
            return identity
        record = await self._keys.find(hash_key(credential))
        if record is None:
            raise AuthenticationError("The API key is not valid.", code="invalid_api_key")
        source = "key" if record.lifecycle else "config_key"
        known, stored = self._users.fresh(record.user, now)
        if not known:
            stored = await self._users.get(record.user, now)
        return Identity(
            user=record.user,
            tier=self._policy.tier(record.user, source, record.tier, stored, now),
            key_id=record.key_id,
            source=source,
            models=record.models,
            ephemeral=record.ephemeral,
            expires_at=record.expires_at,
            team=record.team,
        )

    async def aclose(self) -> None:
        """Close the OIDC verifier's HTTP client, if there is one."""
        if self._oidc is not None:
            await self._oidc.aclose()
