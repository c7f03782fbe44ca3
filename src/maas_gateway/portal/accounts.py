"""Local portal accounts: a password (as an argon2id hash) and an admin flag for a row of the users table.

Two implementations keep the same contract (``tests/test_portal_store_contract.py``):
``memory_accounts`` when no ``database.url`` is set, ``sql_accounts`` otherwise. The account never holds a
tier or a disabled flag of its own: those stay on the users row, the one authority for every credential.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from maas_gateway.auth.key_repository import StoredUser

__all__ = ["Account", "AccountStore"]


@dataclass(frozen=True, slots=True)
class Account:
    user: str  # the users table's name: limits, usage and keys are keyed by it
    password_hash: str  # argon2id, in PHC form (parameters and salt included)
    is_admin: bool
    created_at: float
    password_changed_at: float


class AccountStore(Protocol):
    async def get(self, user: str) -> Account | None: ...

    async def create(self, account: Account, owner: StoredUser) -> bool:
        """Create ``owner``'s users row if absent, then ``account`` unless one exists, in one step;
        ``True`` when the account was created (an existing account is left as it is)."""
        ...

    async def set_password_hash(self, user: str, password_hash: str, at: float) -> bool:
        """Replace the hash (a new password, or the same one rehashed); ``False`` when there is no account."""
        ...

    async def set_admin(self, user: str, is_admin: bool) -> bool: ...

    async def list_admins(self) -> list[str]: ...
