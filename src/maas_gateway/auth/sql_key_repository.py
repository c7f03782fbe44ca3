"""Users and API keys in the shared SQL database (SQLite or PostgreSQL).

Every write is one transaction that changes only the fields it means to, and appends the identity change
that other replicas read; on PostgreSQL the same transaction sends a ``NOTIFY`` so they read it at once.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from maas_gateway.auth.key_repository import (
    ChangeKind,
    IdentityChange,
    KeyPage,
    StoredKey,
    StoredUser,
    UserChanges,
    escape_like,
    fold,
    search_text,
)
from maas_gateway.auth.tables import api_keys, identity_changes, users
from maas_gateway.database import Database

__all__ = ["NOTIFY_CHANNEL", "SqlKeyRepository"]

NOTIFY_CHANNEL = "maas_identity_changes"
_CHANGES_KEPT_FOR = 3600.0  # seconds; a replica that falls further behind relies on its cache TTL


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
        team=row["team"],
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
        "search_text": search_text(key.name, key.key_id),
        "team": key.team,
    }


def _user(row: RowMapping) -> StoredUser:
    return StoredUser(
        user=row["user"],
        tier=row["tier"],
        display_name=row["display_name"],
        disabled=bool(row["disabled"]),
        created_at=row["created_at"],
        source=row["source"],
        tier_override=row["tier_override"],
        deprovisioned=bool(row["deprovisioned"]),
        seen_at=row["seen_at"],
    )


def _user_values(user: StoredUser) -> dict[str, Any]:
    return {
        "user": user.user,
        "tier": user.tier,
        "display_name": user.display_name,
        "disabled": user.disabled,
        "created_at": user.created_at,
        "source": user.source,
        "tier_override": user.tier_override,
        "deprovisioned": user.deprovisioned,
        "seen_at": user.seen_at,
    }


class SqlKeyRepository:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def start(self) -> None:
        await self.database.ready()

    async def _one(self, statement: Any) -> RowMapping | None:
        await self.database.ready()
        async with self.database.engine.connect() as connection:
            return (await connection.execute(statement)).mappings().first()

    def _insert_user_if_absent(self, user: StoredUser) -> Any:
        dialect = postgresql if self.database.is_postgres else sqlite
        return (
            dialect.insert(users).values(**_user_values(user)).on_conflict_do_nothing(index_elements=["user"])
        )

    async def _changed(self, connection: AsyncConnection, kind: ChangeKind, subject: str) -> None:
        await connection.execute(insert(identity_changes).values(kind=kind, subject=subject, at=time.time()))
        if self.database.is_postgres:
            await connection.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})

    async def find_key(self, key_hash: str) -> StoredKey | None:
        row = await self._one(select(api_keys).where(api_keys.c.key_hash == key_hash))
        return _key(row) if row is not None else None

    async def get_key(self, key_id: str) -> StoredKey | None:
        row = await self._one(select(api_keys).where(api_keys.c.key_id == key_id))
        return _key(row) if row is not None else None

    async def create_key(self, key: StoredKey, owner: StoredUser | None = None) -> StoredUser | None:
        await self.database.ready()
        async with self.database.engine.begin() as connection:
            if owner is not None:
                await connection.execute(self._insert_user_if_absent(owner))
            stored = (
                (await connection.execute(select(users).where(users.c.user == key.user))).mappings().first()
            )
            if stored is None:
                raise ValueError(f"There is no user '{key.user}' to own the key.")
            await connection.execute(insert(api_keys).values(**_key_values(key)))
            await self._changed(connection, "created", key.user)
            return _user(stored)

    async def touch_key(self, key_id: str, at: float) -> None:
        statement = (
            update(api_keys)
            .where(api_keys.c.key_id == key_id)
            .where(or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < at))
            .values(last_used_at=at)
        )
        await self.database.ready()
        async with self.database.engine.begin() as connection:
            await connection.execute(statement)

    async def revoke_key(self, key_id: str, at: float) -> StoredKey | None:
        statement = (
            update(api_keys)
            .where(api_keys.c.key_id == key_id)
            .where(or_(api_keys.c.revoked_at.is_(None), api_keys.c.revoked_at > at))
            .values(revoked_at=at)
        )
        await self.database.ready()
        async with self.database.engine.begin() as connection:
            changed = (await connection.execute(statement)).rowcount
            row = (
                (await connection.execute(select(api_keys).where(api_keys.c.key_id == key_id)))
                .mappings()
                .first()
            )
            if row is None:
                return None
            if changed:
                await self._changed(connection, "key", row["key_hash"])
            return _key(row)

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
            conditions.append(api_keys.c.search_text.like(f"%{escape_like(fold(search))}%", escape="\\"))
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
            purged = int((await connection.execute(statement)).rowcount)
            await connection.execute(
                delete(identity_changes).where(identity_changes.c.at < before - _CHANGES_KEPT_FOR)
            )
            return purged

    async def get_user(self, user: str) -> StoredUser | None:
        row = await self._one(select(users).where(users.c.user == user))
        return _user(row) if row is not None else None

    async def add_user(self, user: StoredUser) -> bool:
        await self.database.ready()
        async with self.database.engine.begin() as connection:
            return bool((await connection.execute(self._insert_user_if_absent(user))).rowcount)

    async def update_user(self, user: str, changes: UserChanges) -> StoredUser | None:
        await self.database.ready()
        async with self.database.engine.begin() as connection:
            values = changes.values()
            if values:
                await connection.execute(update(users).where(users.c.user == user).values(**values))
            row = (await connection.execute(select(users).where(users.c.user == user))).mappings().first()
            if row is None:
                return None
            if changes.reaches_other_replicas:
                await self._changed(connection, "user", user)
            return _user(row)

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

    async def changes_since(self, seq: int) -> list[IdentityChange]:
        query = select(identity_changes).where(identity_changes.c.seq > seq).order_by(identity_changes.c.seq)
        await self.database.ready()
        async with self.database.engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [IdentityChange(int(row["seq"]), row["kind"], row["subject"]) for row in rows]

    async def last_change(self) -> int:
        row = await self._one(select(func.max(identity_changes.c.seq).label("seq")))
        return int(row["seq"]) if row is not None and row["seq"] is not None else 0

    async def aclose(self) -> None:
        return None  # the database is shared; its owner closes it
