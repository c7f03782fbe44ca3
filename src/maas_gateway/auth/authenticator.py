"""Turning a credential string into an ``Identity``."""

from __future__ import annotations

from collections.abc import Mapping

from maas_gateway.auth.identity import Identity
from maas_gateway.auth.keys import KeyStore, hash_key
from maas_gateway.errors import AuthenticationError

__all__ = ["Authenticator"]


class Authenticator:
    """Authenticates API keys against a ``KeyStore``; knows nothing of HTTP.

    ``tier_overrides`` maps a user to the tier that replaces the tier of all their keys.
    """

    def __init__(self, keys: KeyStore, tier_overrides: Mapping[str, str] | None = None) -> None:
        self._keys = keys
        self._tier_overrides = dict(tier_overrides or {})

    async def authenticate(self, credential: str) -> Identity:
        record = await self._keys.find(hash_key(credential))
        if record is None:
            raise AuthenticationError("The API key is not valid.", code="invalid_api_key")
        return Identity(
            user=record.user,
            tier=self._tier_overrides.get(record.user, record.tier),
            key_id=record.key_id,
            models=record.models,
        )
