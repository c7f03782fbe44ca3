"""Users and API keys in the shared SQL database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping

from maas_gateway.auth.key_repository import KeyPage, StoredKey, StoredUser
from maas_gateway.auth.tables import api_keys, users
from maas_gateway.database import Database

__all__ = ["SqlKeyRepository"]


def _key(row: RowMapping) -> StoredKey:
    models = row["models"]
    return StoredKey(
        key_id=row["key_id"],
        key_hash=row["key_hash"],
        user=row["user"],
        name=row["name"],
        models=tuple(models) if models is not None else None,
        ephemeral=bool(row["ephemeral"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )


def _key_values(key: StoredKey) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "key_hash": key.key_hash,
        "user": key.user,
        "name": key.name,
        "models": list(key.models) if key.models is not None else None,
        "ephemeral": key.ephemeral,
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "last_used_at": key.last_used_at,
    }


def _user(row: RowMapping) -> StoredUser:
    return StoredUser(row["user"], row["tier"], row["display_name"], bool(row["disabled"]), row["created_at"])


class SqlKeyRepository:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def start(self) -> None:
        await self.database.ready()

    async def _one(self, statement: Any) -> RowMapping | None:
        await self.database.ready()
        async with self.database.engine.connect() as connection:
            return (await connection.execute(statement)).mappings().first()

    async def _write(self, *statements: Any) -> None:
        await self.database.ready()
        async with self.database.engine.begin() as connection:
            for statement in statements:
                await connection.execute(statement)

    async def find_key(self, key_hash: str) -> StoredKey | None:
        row = await self._one(select(api_keys).where(api_keys.c.key_hash == key_hash))
        return _key(row) if row is not None else None

    async def get_key(self, key_id: str) -> StoredKey | None:
        row = await self._one(select(api_keys).where(api_keys.c.key_id == key_id))
        return _key(row) if row is not None else None

    async def add_key(self, key: StoredKey) -> None:
        await self._write(insert(api_keys).values(**_key_values(key)))

    async def update_key(self, key: StoredKey) -> None:
        values = _key_values(key)
        del values["key_id"]
        await self._write(update(api_keys).where(api_keys.c.key_id == key.key_id).values(**values))

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
        conditions = []
        if user is not None:
            conditions.append(api_keys.c.user == user)
        if search:
            pattern = f"%{search.lower()}%"
            conditions.append(or_(func.lower(api_keys.c.name).like(pattern), api_keys.c.key_id.like(pattern)))
        if not include_inactive:
            conditions.append(or_(api_keys.c.revoked_at.is_(None), api_keys.c.revoked_at > now))
            conditions.append(or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now))
        await self.database.ready()
        async with self.database.engine.connect() as connection:
            total = await connection.execute(select(func.count()).select_from(api_keys).where(*conditions))
            query = (
                select(api_keys)
                .where(*conditions)
                .order_by(api_keys.c.created_at, api_keys.c.key_id)
                .offset(offset)
                .limit(limit)
            )
            rows = (await connection.execute(query)).mappings().all()
            return KeyPage([_key(row) for row in rows], int(total.scalar_one()))

    async def purge_keys(self, *, before: float) -> int:
        statement = delete(api_keys).where(
            or_(api_keys.c.expires_at < before, api_keys.c.revoked_at < before)
        )
        await self.database.ready()
        async with self.database.engine.begin() as connection:
            return int((await connection.execute(statement)).rowcount)

    async def get_user(self, user: str) -> StoredUser | None:
        row = await self._one(select(users).where(users.c.user == user))
        return _user(row) if row is not None else None

    async def put_user(self, user: StoredUser) -> None:
        values = {"tier": user.tier, "display_name": user.display_name, "disabled": user.disabled}
        existing = await self.get_user(user.user)
        if existing is None:
            await self._write(insert(users).values(user=user.user, created_at=user.created_at, **values))
        else:
            await self._write(update(users).where(users.c.user == user.user).values(**values))

    async def list_users(self, *, offset: int, limit: int) -> tuple[list[StoredUser], int]:
        await self.database.ready()
        async with self.database.engine.connect() as connection:
            total = (await connection.execute(select(func.count()).select_from(users))).scalar_one()
            rows = (
                (await connection.execute(select(users).order_by(users.c.user).offset(offset).limit(limit)))
                .mappings()
                .all()
            )
        return [_user(row) for row in rows], int(total)

    async def aclose(self) -> None:
        return None  # the database is shared; its owner closes it
