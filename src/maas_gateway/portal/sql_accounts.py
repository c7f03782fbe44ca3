"""Portal accounts in the shared SQL database (SQLite or PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping

from maas_gateway.auth.key_repository import StoredUser
from maas_gateway.auth.tables import users
from maas_gateway.database import Database
from maas_gateway.portal.accounts import Account
from maas_gateway.portal.tables import portal_accounts

__all__ = ["SqlAccountStore"]


def _account(row: RowMapping) -> Account:
    return Account(
        user=row["user"],
        password_hash=row["password_hash"],
        is_admin=bool(row["is_admin"]),
        created_at=row["created_at"],
        password_changed_at=row["password_changed_at"],
    )


class SqlAccountStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    def _insert_if_absent(self, table: Any, values: dict[str, Any], key: str) -> Any:
        dialect = postgresql if self.database.is_postgres else sqlite
        return dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=[key])

    async def get(self, user: str) -> Account | None:
        await self.database.ready()
        async with self.database.engine.connect() as connection:
            statement = select(portal_accounts).where(portal_accounts.c.user == user)
            row = (await connection.execute(statement)).mappings().first()
        return _account(row) if row is not None else None

    async def create(self, account: Account, owner: StoredUser) -> bool:
        owner_values = {
            "user": owner.user,
            "tier": owner.tier,
            "display_name": owner.display_name,
            "disabled": owner.disabled,
            "created_at": owner.created_at,
            "source": owner.source,
            "tier_override": owner.tier_override,
            "deprovisioned": owner.deprovisioned,
            "seen_at": owner.seen_at,
        }
        account_values = {
            "user": account.user,
            "password_hash": account.password_hash,
            "is_admin": account.is_admin,
            "created_at": account.created_at,
            "password_changed_at": account.password_changed_at,
        }
        await self.database.ready()
        async with self.database.engine.begin() as connection:
            await connection.execute(self._insert_if_absent(users, owner_values, "user"))
            result = await connection.execute(self._insert_if_absent(portal_accounts, account_values, "user"))
            return bool(result.rowcount)

    async def _update(self, user: str, **values: Any) -> bool:
        await self.database.ready()
        async with self.database.engine.begin() as connection:
            statement = update(portal_accounts).where(portal_accounts.c.user == user).values(**values)
            return bool((await connection.execute(statement)).rowcount)

    async def set_password_hash(self, user: str, password_hash: str, at: float) -> bool:
        return await self._update(user, password_hash=password_hash, password_changed_at=at)

    async def set_admin(self, user: str, is_admin: bool) -> bool:
        return await self._update(user, is_admin=is_admin)

    async def list_admins(self) -> list[str]:
        await self.database.ready()
        async with self.database.engine.connect() as connection:
            statement = (
                select(portal_accounts.c.user)
                .where(portal_accounts.c.is_admin.is_(True))
                .order_by(portal_accounts.c.user)
            )
            return [row[0] for row in await connection.execute(statement)]
