"""The API key lifecycle: create (shown once), look up, list, revoke, rotate with grace, purge.

Keys look like ``maas_<prefix>_<secret>``: the prefix is public (the key id is ``key_<prefix>``), the
whole key is stored only as its SHA-256 digest. Looked-up keys are trusted for ``cache_ttl`` seconds;
every replica forgets a changed key as soon as it reads the change (``IdentityChangeWatcher``), so the TTL
is only the safety net. Unknown digests are remembered too (a bounded negative cache), so a flood of
random keys costs no database query each; a key's creation clears it. Owners are checked by the caller's
user name: another user's key id is 404, never 403.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
import time
from collections import OrderedDict
from collections.abc import Callable

from maas_gateway.auth.key_repository import KeyPage, KeyRepository, StoredKey, StoredUser
from maas_gateway.auth.keys import KeyRecord, hash_key
from maas_gateway.config.durations import format_duration
from maas_gateway.config.schema import KeySettings
from maas_gateway.errors import (
    AuthenticationError,
    InvalidRequestError,
    NotFoundError,
    ServiceUnavailableError,
)

__all__ = ["KeyService", "new_key"]

logger = logging.getLogger("maas_gateway.keys")

_ALPHABET = string.ascii_lowercase + string.digits
_TOUCH_EVERY = 60.0
_UNKNOWN_KEYS_KEPT = 10_000
_RETRY_AFTER = 1.0  # seconds between two tries of an unreachable key store


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
        self._cache: dict[str, tuple[float, StoredKey]] = {}
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._touched: dict[str, float] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._unreachable = False
        self._retry_at = 0.0

    async def find(self, key_hash: str) -> KeyRecord | None:
        """The ``KeyStore`` lookup: a usable key's record, ``None`` if unknown; 401 if expired or revoked."""
        now = self._clock()
        cached = self._cache.get(key_hash)
        if cached is not None and now - cached[0] < self.settings.cache_ttl:
            key = cached[1]
        else:
            unknown_since = self._unknown.get(key_hash)
            if unknown_since is not None and now - unknown_since < self.settings.cache_ttl:
                return None
            if now < self._retry_at:
                return self._during_outage(key_hash, cached, unknown_since, now, None)
            try:
                found = await self.repository.find_key(key_hash)
            except Exception as exc:  # noqa: BLE001  # any database failure: answer from what is known
                self._retry_at = now + _RETRY_AFTER
                return self._during_outage(key_hash, cached, unknown_since, now, exc)
            self._recovered()
            if found is None:
                self._remember_unknown(key_hash, now)
                return None
            key = found
            self._cache[key_hash] = (now, key)
        return self._usable(key, now)

    def _usable(self, key: StoredKey, now: float) -> KeyRecord:
        if key.revoked_at is not None and key.revoked_at <= now:
            raise AuthenticationError("The API key has been revoked.", code="revoked_api_key")
        if key.expires_at is not None and key.expires_at <= now:
            raise AuthenticationError("The API key has expired.", code="expired_api_key")
        last_used = self._touched.get(key.key_id, key.last_used_at)
        if last_used is None or now - last_used > _TOUCH_EVERY:
            self._touch(key.key_id, now)
        models = frozenset(key.models) if key.models is not None else None
        return KeyRecord(
            key.key_hash,
            key.user,
            "",  # a lifecycle key's tier is its owner's, decided by the authenticator
            key.name,
            models,
            key_id_override=key.key_id,
            lifecycle=True,
            ephemeral=key.ephemeral,
            expires_at=key.ends_at,
            team=key.team,
        )

    def _during_outage(
        self,
        key_hash: str,
        cached: tuple[float, StoredKey] | None,
        unknown_since: float | None,
        now: float,
        exc: Exception | None,
    ) -> KeyRecord | None:
        """The key store cannot be read: a key looked up within ``outage_grace`` is served from the cache
        (revoked and expired keys stay refused), a key known to be unknown stays unknown, anything else
        is a 503 that says why, never a 500. The store is tried again after ``_RETRY_AFTER`` seconds, so
        an outage costs one failed query per second, not one per request."""
        if exc is not None and not self._unreachable:
            self._unreachable = True
            logger.error(
                "The key store cannot be read (%s); keys looked up in the last %s are served from the cache "
                "until it can.",
                type(exc).__name__,
                format_duration(self.settings.outage_grace),
            )
        if cached is not None and now - cached[0] < self.settings.outage_grace:
            return self._usable(cached[1], now)
        if unknown_since is not None and now - unknown_since < self.settings.outage_grace:
            return None
        raise ServiceUnavailableError(
            "API keys cannot be checked right now: the key store is unreachable. Try again shortly.",
            code="identity_unavailable",
        )

    def _recovered(self) -> None:
        if self._unreachable:
            self._unreachable = False
            logger.warning("The key store can be read again.")

    def _remember_unknown(self, key_hash: str, now: float) -> None:
        self._unknown[key_hash] = now
        self._unknown.move_to_end(key_hash)
        while len(self._unknown) > _UNKNOWN_KEYS_KEPT:
            self._unknown.popitem(last=False)

    def _touch(self, key_id: str, now: float) -> None:
        """Record the use in the background: a targeted update of ``last_used_at`` and nothing else."""
        self._touched[key_id] = now
        task = asyncio.create_task(self._write_touch(key_id, now))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _write_touch(self, key_id: str, now: float) -> None:
        try:
            await self.repository.touch_key(key_id, now)
        except Exception as exc:  # noqa: BLE001  # a lost "last used" time must never fail a request
            if not self._unreachable:  # an outage is logged once, by the lookup
                logger.warning("Recording the last use of %s failed: %s", key_id, type(exc).__name__)

    def forget(self, *, key_hash: str | None = None, user: str | None = None) -> None:
        """Drop cached lookups of one key or of every key of one user, so a change takes effect here."""
        for cached_hash, (_, key) in list(self._cache.items()):
            if cached_hash == key_hash or key.user == user:
                del self._cache[cached_hash]

    def forget_unknown(self) -> None:
        """Keys were created: digests remembered as unknown may now be known."""
        self._unknown.clear()

    def forget_all(self) -> None:
        self._cache.clear()
        self._unknown.clear()

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
        lifetime: float,
        ephemeral: bool = False,
        models: tuple[str, ...] | None = None,
        new_owner: StoredUser | None = None,
        ends_by: float | None = None,
        team: str | None = None,
    ) -> tuple[str, StoredKey]:
        """Store a new key of ``user`` living ``lifetime`` seconds (already checked by the caller), and
        never past ``ends_by``.

        With ``new_owner``, the user is created in the same transaction when absent.
        """
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
        expires_at = now + lifetime if ends_by is None else min(now + lifetime, ends_by)
        key = StoredKey(key_id, digest, user, name, models, ephemeral, now, expires_at, None, None, team)
        await self.repository.create_key(key, new_owner)
        self._unknown.clear()
        return plaintext, key

    async def owned(self, key_id: str, owner: str | None) -> StoredKey:
        key = await self.repository.get_key(key_id)
        if key is None or (owner is not None and key.user != owner):
            raise NotFoundError(f"There is no key '{key_id}'.", code="key_not_found")
        return key

    async def revoke(self, key_id: str, *, owner: str | None, at: float | None = None) -> StoredKey:
        key = await self.owned(key_id, owner)
        when = self._clock() if at is None else at
        revoked = await self.repository.revoke_key(key_id, when)
        self.forget(key_hash=key.key_hash)
        if revoked is None:
            raise NotFoundError(f"There is no key '{key_id}'.", code="key_not_found")
        return revoked

    async def rotate(self, old: StoredKey, *, grace: float) -> tuple[str, StoredKey, StoredKey]:
        """A new key like ``old``; the old one keeps working for ``grace`` seconds only."""
        now = self._clock()
        if not old.active_at(now):
            raise InvalidRequestError("Only an active key can be rotated.", code="key_inactive")
        remaining = (old.expires_at - now) if old.expires_at is not None else self.settings.default_lifetime
        plaintext, new = await self.create(
            old.user,
            name=old.name,
            lifetime=remaining,
            ephemeral=old.ephemeral,
            models=old.models,
            team=old.team,
        )
        retired = await self.revoke(old.key_id, owner=None, at=now + grace)
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
