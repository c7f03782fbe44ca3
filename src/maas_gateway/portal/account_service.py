"""Local accounts' use cases: check a password (rehashing when parameters change) and create accounts.

It takes names and passwords, never requests; the users row it creates (or finds) stays the authority
over tier and disabled state, exactly as for API keys and tokens.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from maas_gateway.auth.key_repository import StoredUser
from maas_gateway.portal.accounts import Account, AccountStore
from maas_gateway.portal.passwords import Passwords, password_problem

__all__ = ["AccountService"]


class AccountService:
    def __init__(
        self, store: AccountStore, passwords: Passwords, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.passwords = passwords
        self._clock = clock

    async def check_password(self, user: str, password: str) -> Account | None:
        """The account when ``password`` is its password, else ``None`` (same cost for unknown names).

        A hash made with older parameters is replaced by one with the current parameters on success.
        """
        account = await self.store.get(user)
        stored = account.password_hash if account is not None else None
        if not await self.passwords.verify(stored, password) or account is None:
            return None
        if self.passwords.needs_rehash(account.password_hash):
            fresh = await self.passwords.hash(password)
            await self.store.set_password_hash(user, fresh, self._clock())
        return account

    async def create(
        self,
        user: str,
        password: str,
        *,
        tier: str,
        is_admin: bool = False,
        display_name: str | None = None,
        disabled: bool = False,
    ) -> bool:
        """Create ``user``'s account (and users row, if absent); ``False`` when the account exists already.

        Raises ``ValueError`` with a sentence when the password cannot be used.
        """
        problem = password_problem(password)
        if problem is not None:
            raise ValueError(problem)
        now = self._clock()
        account = Account(user, await self.passwords.hash(password), is_admin, now, now)
        owner = StoredUser(user, tier, display_name, disabled, now, "admin")
        return await self.store.create(account, owner)

    async def set_password(self, user: str, password: str) -> bool:
        problem = password_problem(password)
        if problem is not None:
            raise ValueError(problem)
        return await self.store.set_password_hash(user, await self.passwords.hash(password), self._clock())
