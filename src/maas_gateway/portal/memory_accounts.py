"""Portal accounts in this process only (no ``database.url``): gone at restart, like in-memory keys."""

from __future__ import annotations

import dataclasses

from maas_gateway.auth.key_repository import KeyRepository, StoredUser
from maas_gateway.portal.accounts import Account

__all__ = ["InMemoryAccountStore"]


class InMemoryAccountStore:
    """Accounts beside the in-memory users of ``repository`` (whose ``add_user`` creates the owner)."""

    def __init__(self, repository: KeyRepository) -> None:
        self._repository = repository
        self._accounts: dict[str, Account] = {}

    async def get(self, user: str) -> Account | None:
        return self._accounts.get(user)

    async def create(self, account: Account, owner: StoredUser) -> bool:
        await self._repository.add_user(owner)
        if account.user in self._accounts:
            return False
        self._accounts[account.user] = account
        return True

    async def set_password_hash(self, user: str, password_hash: str, at: float) -> bool:
        account = self._accounts.get(user)
        if account is None:
            return False
        self._accounts[user] = dataclasses.replace(
            account, password_hash=password_hash, password_changed_at=at
        )
        return True

    async def set_admin(self, user: str, is_admin: bool) -> bool:
        account = self._accounts.get(user)
        if account is None:
            return False
        self._accounts[user] = dataclasses.replace(account, is_admin=is_admin)
        return True

    async def list_admins(self) -> list[str]:
        return sorted(user for user, account in self._accounts.items() if account.is_admin)
