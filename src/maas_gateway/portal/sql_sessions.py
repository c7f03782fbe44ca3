"""Portal sessions in the shared SQL database: every replica signs the same sessions in and out."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.engine import RowMapping

from maas_gateway.database import Database
from maas_gateway.portal.sessions import Session
from maas_gateway.portal.tables import portal_sessions

__all__ = ["SqlSessionStore"]


def _session(row: RowMapping) -> Session:
    return Session(
        token_hash=row["token_hash"],
        user=row["user"],
        csrf_token=row["csrf_token"],
        created_at=row["created_at"],
        last_seen_at=row["last_seen_at"],
    )


class SqlSessionStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def _write(self, statement: Any) -> int:
        await self.database.ready()
        async with self.database.engine.begin() as connection:
            return int((await connection.execute(statement)).rowcount)

    async def create(self, session: Session) -> None:
        await self._write(
            insert(portal_sessions).values(
                token_hash=session.token_hash,
                user=session.user,
                csrf_token=session.csrf_token,
                created_at=session.created_at,
                last_seen_at=session.last_seen_at,
            )
        )

    async def get(self, token_hash: str) -> Session | None:
        await self.database.ready()
        async with self.database.engine.connect() as connection:
            statement = select(portal_sessions).where(portal_sessions.c.token_hash == token_hash)
            row = (await connection.execute(statement)).mappings().first()
        return _session(row) if row is not None else None

    async def touch(self, token_hash: str, at: float) -> None:
        await self._write(
            update(portal_sessions)
            .where(portal_sessions.c.token_hash == token_hash, portal_sessions.c.last_seen_at < at)
            .values(last_seen_at=at)
        )

    async def delete(self, token_hash: str) -> bool:
        return bool(
            await self._write(delete(portal_sessions).where(portal_sessions.c.token_hash == token_hash))
        )

    async def delete_user(self, user: str) -> int:
        return await self._write(delete(portal_sessions).where(portal_sessions.c.user == user))

    async def purge(self, *, idle_before: float, created_before: float) -> int:
        return await self._write(
            delete(portal_sessions).where(
                or_(
                    portal_sessions.c.last_seen_at < idle_before,
                    portal_sessions.c.created_at < created_before,
                )
            )
        )
