"""Where users and lifecycle-managed API keys live: the interface and its in-memory implementation.

The SQL implementation (``sql_key_repository``) is chosen when ``database.url`` is set; this one keeps
everything in the process, for demos and tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["InMemoryKeyRepository", "KeyPage", "KeyRepository", "StoredKey", "StoredUser"]


@dataclass(frozen=True, slots=True)
class StoredUser:
    user: str
    tier: str
    display_name: str | None
    disabled: bool
    created_at: float


@dataclass(frozen=True, slots=True)
class StoredKey:
    key_id: str
    key_hash: str
    user: str
    name: str
    models: tuple[str, ...] | None
    ephemeral: bool
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    last_used_at: float | None

    def active_at(self, now: float) -> bool:
        return (self.revoked_at is None or self.revoked_at > now) and (
            self.expires_at is None or self.expires_at > now
        )


@dataclass(frozen=True, slots=True)
class KeyPage:
    keys: list[StoredKey]
    total: int


class KeyRepository(Protocol):
    async def start(self) -> None: ...

    async def find_key(self, key_hash: str) -> StoredKey | None: ...

    async def get_key(self, key_id: str) -> StoredKey | None: ...

    async def add_key(self, key: StoredKey) -> None: ...

    async def update_key(self, key: StoredKey) -> None: ...

    async def list_keys(
        self,
        *,
        user: str | None,
        search: str | None,
        include_inactive: bool,
        now: float,
        offset: int,
        limit: int,
    ) -> KeyPage: ...

    async def purge_keys(self, *, before: float) -> int:
        """Delete keys that expired or were revoked before ``before``; return how many."""
        ...

    async def get_user(self, user: str) -> StoredUser | None: ...

    async def put_user(self, user: StoredUser) -> None:
        """Create or replace a user."""
        ...

    async def list_users(self, *, offset: int, limit: int) -> tuple[list[StoredUser], int]: ...

    async def aclose(self) -> None: ...


class InMemoryKeyRepository:
    def __init__(self) -> None:
        self._keys: dict[str, StoredKey] = {}
        self._users: dict[str, StoredUser] = {}

    async def start(self) -> None:
        return None

    async def find_key(self, key_hash: str) -> StoredKey | None:
        for key in self._keys.values():
            if key.key_hash == key_hash:
                return key
        return None

    async def get_key(self, key_id: str) -> StoredKey | None:
        return self._keys.get(key_id)

    async def add_key(self, key: StoredKey) -> None:
        self._keys[key.key_id] = key

    async def update_key(self, key: StoredKey) -> None:
        if key.key_id in self._keys:
            self._keys[key.key_id] = key

    async def list_keys(
        self,
        *,
        user: str | None,
        search: str | None,
        include_inactive: bool,
        now: float,
        offset: int,
        limit: int,
    ) -> KeyPage:
        keys = [
            key
            for key in sorted(self._keys.values(), key=lambda k: (k.created_at, k.key_id))
            if (user is None or key.user == user)
            and (search is None or search.lower() in key.name.lower() or search in key.key_id)
            and (include_inactive or key.active_at(now))
        ]
        return KeyPage(keys[offset : offset + limit], len(keys))

    async def purge_keys(self, *, before: float) -> int:
        doomed = [
            key.key_id
            for key in self._keys.values()
            if (key.expires_at is not None and key.expires_at < before)
            or (key.revoked_at is not None and key.revoked_at < before)
        ]
        for key_id in doomed:
            del self._keys[key_id]
        return len(doomed)

    async def get_user(self, user: str) -> StoredUser | None:
        return self._users.get(user)

    async def put_user(self, user: StoredUser) -> None:
        self._users[user.user] = user

    async def list_users(self, *, offset: int, limit: int) -> tuple[list[StoredUser], int]:
        users = sorted(self._users.values(), key=lambda u: u.user)
        return users[offset : offset + limit], len(users)

    async def aclose(self) -> None:
        return None
