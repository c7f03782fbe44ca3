"""Turning a credential string into an ``Identity``."""

from __future__ import annotations

from collections.abc import Mapping

from maas_gateway.auth.identity import Identity
from maas_gateway.auth.keys import KeyStore, hash_key
from maas_gateway.auth.oidc import OIDCVerifier, looks_like_jwt
from maas_gateway.errors import AuthenticationError

__all__ = ["Authenticator"]


class Authenticator:
    """Authenticates API keys against a ``KeyStore`` and JWTs with an ``OIDCVerifier``; knows nothing of HTTP.

    ``tier_overrides`` maps a user to the tier that replaces the tier of all their keys and tokens.
    """

    def __init__(
        self,
        keys: KeyStore,
        tier_overrides: Mapping[str, str] | None = None,
        oidc: OIDCVerifier | None = None,
    ) -> None:
        self._keys = keys
        self._tier_overrides = dict(tier_overrides or {})
        self._oidc = oidc

    @property
    def oidc(self) -> OIDCVerifier | None:
        return self._oidc

    async def authenticate(self, credential: str) -> Identity:
        if looks_like_jwt(credential):
            if self._oidc is None:
                raise AuthenticationError(
                    "Tokens are not accepted: no OIDC issuer is configured.", code="tokens_not_accepted"
                )
            return await self._oidc.verify(credential, self._tier_overrides)
        record = await self._keys.find(hash_key(credential))
        if record is None:
            raise AuthenticationError("The API key is not valid.", code="invalid_api_key")
        return Identity(
            user=record.user,
            tier=self._tier_overrides.get(record.user, record.tier),
            key_id=record.key_id,
            models=record.models,
        )

    async def aclose(self) -> None:
        """Close the OIDC verifier's HTTP client, if there is one."""
        if self._oidc is not None:
            await self._oidc.aclose()
