"""A ``KeyRepository`` that signals other processes after each change it commits (see ``change_watcher``)."""

from __future__ import annotations

from maas_gateway.auth.change_watcher import ChangeSignal
from maas_gateway.auth.key_repository import (
    IdentityChange,
    KeyPage,
    KeyRepository,
    StoredKey,
    StoredUser,
    UserChanges,
)

__all__ = ["SignallingKeyRepository"]


class SignallingKeyRepository:
    """Delegates everything to ``inner``; after a committed change, sends ``signal``."""

    def __init__(self, inner: KeyRepository, signal: ChangeSignal) -> None:
        self._inner = inner
        self._signal = signal

    async def start(self) -> None:
        await self._inner.start()

    async def find_key(self, key_hash: str) -> StoredKey | None:
        return await self._inner.find_key(key_hash)

    async def get_key(self, key_id: str) -> StoredKey | None:
        return await self._inner.get_key(key_id)

    async def create_key(self, key: StoredKey, owner: StoredUser | None = None) -> StoredUser | None:
        stored = await self._inner.create_key(key, owner)
        await self._signal.send()
        return stored

    async def touch_key(self, key_id: str, at: float) -> None:
        await self._inner.touch_key(key_id, at)

    async def revoke_key(self, key_id: str, at: float) -> StoredKey | None:
        revoked = await self._inner.revoke_key(key_id, at)
        await self._signal.send()
        return revoked

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
        return await self._inner.list_keys(
            user=user, search=search, include_inactive=include_inactive, now=now, offset=offset, limit=limit
        )

    async def purge_keys(self, *, before: float) -> int:
        return await self._inner.purge_keys(before=before)

    async def get_user(self, user: str) -> StoredUser | None:
        return await self._inner.get_user(user)

    async def add_user(self, user: StoredUser) -> bool:
        return await self._inner.add_user(user)

    async def update_user(self, user: str, changes: UserChanges) -> StoredUser | None:
        updated = await self._inner.update_user(user, changes)
        if changes.reaches_other_replicas:
            await self._signal.send()
        return updated

    async def list_users(self, *, offset: int, limit: int) -> tuple[list[StoredUser], int]:
        return await self._inner.list_users(offset=offset, limit=limit)

    async def changes_since(self, seq: int) -> list[IdentityChange]:
        return await self._inner.changes_since(seq)

    async def last_change(self) -> int:
        return await self._inner.last_change()

    async def aclose(self) -> None:
        await self._inner.aclose()
