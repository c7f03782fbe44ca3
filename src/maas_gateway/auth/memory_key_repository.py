"""Users and lifecycle keys held in the process: the in-memory ``KeyRepository``, for demos and tests."""

from __future__ import annotations

from dataclasses import replace

from maas_gateway.auth.key_repository import (
    ChangeKind,
    IdentityChange,
    KeyPage,
    StoredKey,
    StoredUser,
    UserChanges,
    fold,
    search_text,
)

__all__ = ["InMemoryKeyRepository"]

_CHANGES_KEPT = 10_000


class InMemoryKeyRepository:
    def __init__(self) -> None:
        self._keys: dict[str, StoredKey] = {}
        self._by_hash: dict[str, str] = {}
        self._users: dict[str, StoredUser] = {}
        self._changes: list[IdentityChange] = []
        self._seq = 0

    async def start(self) -> None:
        return None

    def _changed(self, kind: ChangeKind, subject: str) -> None:
        self._seq += 1
        self._changes.append(IdentityChange(self._seq, kind, subject))
        del self._changes[:-_CHANGES_KEPT]

    async def find_key(self, key_hash: str) -> StoredKey | None:
        key_id = self._by_hash.get(key_hash)
        return self._keys.get(key_id) if key_id is not None else None

    async def get_key(self, key_id: str) -> StoredKey | None:
        return self._keys.get(key_id)

    async def create_key(self, key: StoredKey, owner: StoredUser | None = None) -> StoredUser | None:
        if key.key_id in self._keys or key.key_hash in self._by_hash:
            raise ValueError(f"The key {key.key_id} exists already.")
        if owner is not None:
            self._users.setdefault(owner.user, owner)
        elif key.user not in self._users:
            raise ValueError(f"There is no user '{key.user}' to own the key.")
        self._keys[key.key_id] = key
        self._by_hash[key.key_hash] = key.key_id
        self._changed("created", key.user)
        return self._users[key.user]

    async def touch_key(self, key_id: str, at: float) -> None:
        key = self._keys.get(key_id)
        if key is not None and (key.last_used_at is None or key.last_used_at < at):
            self._keys[key_id] = replace(key, last_used_at=at)

    async def revoke_key(self, key_id: str, at: float) -> StoredKey | None:
        key = self._keys.get(key_id)
        if key is None:
            return None
        if key.revoked_at is None or key.revoked_at > at:
            key = self._keys[key_id] = replace(key, revoked_at=at)
            self._changed("key", key.key_hash)
        return key

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
        needle = fold(search) if search else None
        keys = [
            key
            for key in sorted(self._keys.values(), key=lambda k: (k.created_at, k.key_id))
            if (user is None or key.user == user)
            and (needle is None or needle in search_text(key.name, key.key_id))
            and (include_inactive or key.active_at(now))
        ]
        return KeyPage(keys[offset : offset + limit], len(keys))

    async def purge_keys(self, *, before: float) -> int:
        doomed = [
            key
            for key in self._keys.values()
            if (key.expires_at is not None and key.expires_at < before)
            or (key.revoked_at is not None and key.revoked_at < before)
        ]
        for key in doomed:
            del self._keys[key.key_id]
            del self._by_hash[key.key_hash]
        return len(doomed)

    async def get_user(self, user: str) -> StoredUser | None:
        return self._users.get(user)

    async def add_user(self, user: StoredUser) -> bool:
        if user.user in self._users:
            return False
        self._users[user.user] = user
        return True

    async def update_user(self, user: str, changes: UserChanges) -> StoredUser | None:
        current = self._users.get(user)
        if current is None:
            return None
        updated = self._users[user] = replace(current, **changes.values())  # type: ignore[arg-type]  # names checked by UserChanges.values
        if changes.reaches_other_replicas:
            self._changed("user", user)
        return updated

    async def list_users(self, *, offset: int, limit: int) -> tuple[list[StoredUser], int]:
        users = sorted(self._users.values(), key=lambda u: u.user)
        return users[offset : offset + limit], len(users)

    async def changes_since(self, seq: int) -> list[IdentityChange]:
        return [change for change in self._changes if change.seq > seq]

    async def last_change(self) -> int:
        return self._seq

    async def aclose(self) -> None:
        return None
