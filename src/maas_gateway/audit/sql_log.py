"""The audit log in the shared SQL database (SQLite or PostgreSQL): one insert per entry, in its own
transaction, so an entry is kept once the action it records has answered."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import RowMapping

from maas_gateway.audit.entries import Actor, AuditEntry, AuditPage, AuditQuery, safe_details
from maas_gateway.audit.tables import audit_entries
from maas_gateway.database import Database

__all__ = ["SqlAuditLog"]


def _entry(row: RowMapping) -> AuditEntry:
    return AuditEntry(
        int(row["id"]),
        row["at"],
        row["actor"],
        row["actor_kind"],
        row["address"],
        row["action"],
        row["subject"],
        dict(row["details"] or {}),
    )


class SqlAuditLog:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def record(
        self, actor: Actor, action: str, subject: str, details: dict[str, Any], at: float
    ) -> AuditEntry:
        kept = safe_details(details)
        values = {
            "at": at,
            "actor": actor.name,
            "actor_kind": actor.kind,
            "address": actor.address,
            "action": action,
            "subject": subject,
            "details": kept,
        }
        await self.database.ready()
        async with self.database.engine.begin() as connection:
            result = await connection.execute(
                insert(audit_entries).values(**values).returning(audit_entries.c.id)
            )
            entry_id = int(result.scalar_one())
        return AuditEntry(entry_id, at, actor.name, actor.kind, actor.address, action, subject, kept)

    async def search(self, query: AuditQuery) -> AuditPage:
        table = audit_entries.c
        conditions = []
        if query.before is not None:
            conditions.append(table.id < query.before)
        if query.actor is not None:
            conditions.append(table.actor == query.actor)
        if query.action is not None:
            conditions.append(table.action == query.action)
        if query.subject is not None:
            conditions.append(table.subject == query.subject)
        if query.since is not None:
            conditions.append(table.at >= query.since)
        if query.until is not None:
            conditions.append(table.at < query.until)
        statement = select(audit_entries).where(*conditions).order_by(table.id.desc()).limit(query.limit + 1)
        await self.database.ready()
        async with self.database.engine.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        entries = [_entry(row) for row in rows[: query.limit]]
        more = len(rows) > query.limit
        return AuditPage(entries, entries[-1].entry_id if more and entries else None)
