"""The ledger in a SQL database through SQLAlchemy's async engine: SQLite by default, PostgreSQL at scale."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from maas_gateway.database import Database
from maas_gateway.metering.records import USAGE_COLUMNS, UsageRecord
from maas_gateway.metering.store import UsageQuery, UsageRow, report_order
from maas_gateway.metering.tables import usage_records

__all__ = ["SqlLedgerStore"]


class SqlLedgerStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def start(self) -> None:
        await self.database.ready()

    async def write(self, records: Sequence[UsageRecord]) -> None:
        if not records:
            return
        rows = [{**record.to_dict(), "hour": record.hour} for record in records]
        insert = postgresql_insert if self.database.is_postgres else sqlite_insert
        statement = insert(usage_records).on_conflict_do_nothing(index_elements=["request_id"])
        async with self.database.engine.begin() as connection:
            await connection.execute(statement, rows)

    async def aggregate(self, query: UsageQuery) -> list[UsageRow]:
        columns = {
            "user": usage_records.c.user,
            "tier": usage_records.c.tier,
            "model": usage_records.c.model,
            "endpoint": usage_records.c.endpoint,
            # Floor division: SQLAlchemy 2's "/" is true division (it grouped by fractions of days).
            "day": (usage_records.c.hour // 24) * 86400,
            "hour": usage_records.c.hour * 3600,
        }
        groups = [columns[name].label(f"g_{name}") for name in query.group_by]
        sums = [
            func.count().label("requests"),
            func.coalesce(func.sum(func.cast(usage_records.c.rate_limited, usage_records.c.status.type)), 0),
            func.coalesce(func.sum(func.cast(usage_records.c.failed, usage_records.c.status.type)), 0),
            func.coalesce(func.sum(usage_records.c.prompt_tokens), 0),
            func.coalesce(func.sum(usage_records.c.completion_tokens), 0),
            func.coalesce(func.sum(usage_records.c.total_tokens), 0),
            func.coalesce(func.sum(usage_records.c.charged_tokens), 0),
            func.coalesce(func.sum(usage_records.c.cost), 0.0),
        ]
        statement = select(*groups, *sums).where(
            usage_records.c.created_at >= query.since, usage_records.c.created_at < query.until
        )
        if query.user is not None:
            statement = statement.where(usage_records.c.user == query.user)
        if groups:
            statement = statement.group_by(*groups)
        async with self.database.engine.connect() as connection:
            result = await connection.execute(statement)
            rows = result.all()
        width = len(groups)
        report = [
            UsageRow.of(dict(zip(query.group_by, (_plain(v) for v in row[:width]), strict=True)), row[width:])
            for row in rows
        ]
        # Sorted here rather than by the database, whose collation and NULL order differ between engines.
        return sorted(report, key=report_order)

    async def recent(self, user: str, *, since: float, limit: int) -> list[UsageRecord]:
        # The hour bound lets the (user, hour) index narrow the rows before they are sorted.
        statement = (
            select(*(usage_records.c[name] for name in USAGE_COLUMNS))
            .where(
                usage_records.c.user == user,
                usage_records.c.hour >= int(since // 3600),
                usage_records.c.created_at >= since,
            )
            .order_by(usage_records.c.created_at.desc())
            .limit(limit)
        )
        async with self.database.engine.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return [UsageRecord.from_dict(dict(row)) for row in rows]

    async def aclose(self) -> None:
        return None  # the database is shared; its owner closes it


def _plain(value: Any) -> str | int | None:
    if value is None or isinstance(value, str):
        return value
    return int(value)
