"""The API key lifecycle: create (shown once), look up, list, revoke, rotate with grace, purge.

Keys look like ``maas_<prefix>_<secret>``: the prefix is public (the key id is ``key_<prefix>``), the
whole key is stored only as its SHA-256 digest. Looked-up keys are trusted for ``cache_ttl`` seconds,
which bounds how long another replica may still accept a revoked key; the replica that revokes forgets
the key at once. Owners are checked by the caller's user name: another user's key id is 404, never 403.
"""

from __future__ import annotations

import asyncio
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import replace

from maas_gateway.auth.key_repository import KeyPage, KeyRepository, StoredKey, StoredUser
from maas_gateway.auth.keys import KeyRecord, hash_key
from maas_gateway.config.durations import format_duration
from maas_gateway.config.schema import KeySettings
from maas_gateway.errors import AuthenticationError, InvalidRequestError, NotFoundError

__all__ = ["KeyService", "new_key"]

_ALPHABET = string.ascii_lowercase + string.digits
_TOUCH_EVERY = 60.0


def new_key() -> tuple[str, str, str]:
    """A fresh key: (plaintext, key id, digest)."""
    prefix = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    plaintext = f"maas_{prefix}_{secrets.token_urlsafe(32)}"
    return plaintext, f"key_{prefix}", hash_key(plaintext)


class KeyService:
    def __init__(
        self, repository: KeyRepository, settings: KeySettings, clock: Callable[[], float] = time.time
    ) -> None:
        self.repository = repository
        self.settings = settings
        self._clock = clock
        self._cache: dict[str, tuple[float, StoredKey, StoredUser]] = {}
        self._background: set[asyncio.Task[None]] = set()

    async def find(self, key_hash: str) -> KeyRecord | None:
        """The ``KeyStore`` lookup: a usable key's record, ``None`` if unknown; 401 if expired or revoked."""
        now = self._clock()
        cached = self._cache.get(key_hash)
        if cached is not None and now - cached[0] < self.settings.cache_ttl:
            _, key, user = cached
        else:
            found = await self.repository.find_key(key_hash)
            if found is None:
                return None
            owner = await self.repository.get_user(found.user)
            if owner is None:
                return None
            key, user = found, owner
            self._cache[key_hash] = (now, key, user)
        if key.revoked_at is not None and key.revoked_at <= now:
            raise AuthenticationError("The API key has been revoked.", code="revoked_api_key")
        if key.expires_at is not None and key.expires_at <= now:
            raise AuthenticationError("The API key has expired.", code="expired_api_key")
        if user.disabled:
            raise AuthenticationError(f"The user '{user.user}' is disabled.", code="user_disabled")
        if key.last_used_at is None or now - key.last_used_at > _TOUCH_EVERY:
            self._touch(key_hash, key, user, now)
        models = frozenset(key.models) if key.models is not None else None
        return KeyRecord(key.key_hash, user.user, user.tier, key.name, models, key_id_override=key.key_id)

    def _touch(self, key_hash: str, key: StoredKey, user: StoredUser, now: float) -> None:
        touched = replace(key, last_used_at=now)
        self._cache[key_hash] = (self._cache.get(key_hash, (now,))[0], touched, user)
        task = asyncio.create_task(self.repository.update_key(touched))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def forget(self, *, key_hash: str | None = None, user: str | None = None) -> None:
        """Drop cached lookups (after a revocation or a change of tier), so they take effect here at once."""
        for cached_hash, (_, key, _owner) in list(self._cache.items()):
            if cached_hash == key_hash or key.user == user:
                del self._cache[cached_hash]

    async def ensure_user(self, user: str, tier: str, display_name: str | None = None) -> StoredUser:
        existing = await self.repository.get_user(user)
        if existing is not None:
            return existing
        created = StoredUser(user, tier, display_name, False, self._clock())
        await self.repository.put_user(created)
        return created

    def lifetime(self, requested: float | None, *, ephemeral: bool) -> float:
        """The lifetime to grant, or a 400 that says what the caps are."""
        cap = self.settings.ephemeral_max_lifetime if ephemeral else self.settings.max_lifetime
        if requested is None:
            return cap if ephemeral else self.settings.default_lifetime
        if requested > cap:
            kind = "An ephemeral key" if ephemeral else "A key"
            raise InvalidRequestError(
                f"{kind} may live at most {format_duration(cap)}; ask for a shorter `expiresIn`.",
                code="lifetime_too_long",
                param="expiresIn",
            )
        return requested

    async def create(
        self,
        user: str,
        *,
        name: str,
        lifetime: float | None,
        ephemeral: bool = False,
        models: tuple[str, ...] | None = None,
    ) -> tuple[str, StoredKey]:
        seconds = self.lifetime(lifetime, ephemeral=ephemeral)
        active = await self.repository.list_keys(
            user=user, search=None, include_inactive=False, now=self._clock(), offset=0, limit=1
        )
        if active.total >= self.settings.max_keys_per_user:
            raise InvalidRequestError(
                f"The user already has {active.total} active keys, the most allowed; revoke some first.",
                code="too_many_keys",
            )
        plaintext, key_id, digest = new_key()
        now = self._clock()
        key = StoredKey(key_id, digest, user, name, models, ephemeral, now, now + seconds, None, None)
        await self.repository.add_key(key)
        return plaintext, key

    async def owned(self, key_id: str, owner: str | None) -> StoredKey:
        key = await self.repository.get_key(key_id)
        if key is None or (owner is not None and key.user != owner):
            raise NotFoundError(f"There is no key '{key_id}'.", code="key_not_found")
        return key

    async def revoke(self, key_id: str, *, owner: str | None, at: float | None = None) -> StoredKey:
        key = await self.owned(key_id, owner)
        when = self._clock() if at is None else at
        if key.revoked_at is not None and key.revoked_at <= when:
            return key
        revoked = replace(key, revoked_at=when)
        await self.repository.update_key(revoked)
        self.forget(key_hash=key.key_hash)
        return revoked

    async def rotate(
        self, key_id: str, *, owner: str | None, grace: float
    ) -> tuple[str, StoredKey, StoredKey]:
        """A new key like the old one; the old one keeps working for ``grace`` seconds only."""
        old = await self.owned(key_id, owner)
        now = self._clock()
        if not old.active_at(now):
            raise InvalidRequestError("Only an active key can be rotated.", code="key_inactive")
        remaining = (old.expires_at - now) if old.expires_at is not None else None
        plaintext, new = await self.create(
            old.user, name=old.name, lifetime=remaining, ephemeral=old.ephemeral, models=old.models
        )
        retired = await self.revoke(key_id, owner=owner, at=now + grace)
        return plaintext, new, retired

    async def list(
        self,
        *,
        owner: str | None,
        search: str | None = None,
        include_inactive: bool = False,
        page: int = 1,
        page_size: int = 50,
    ) -> KeyPage:
        return await self.repository.list_keys(
            user=owner,
            search=search,
            include_inactive=include_inactive,
            now=self._clock(),
            offset=(page - 1) * page_size,
            limit=page_size,
        )

    async def purge(self) -> int:
        return await self.repository.purge_keys(before=self._clock())
