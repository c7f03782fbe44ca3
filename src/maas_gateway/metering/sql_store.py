"""The ledger in a SQL database through SQLAlchemy's async engine: SQLite by default, PostgreSQL at scale.

Reports read the smallest daily rollups that have the groups asked for (``usage_daily`` and coarser) for
the whole days of their range, the hourly rollups (``usage_hourly``) for the other whole hours, and the
raw records only for the ragged ends, so a month's report costs about the same with a thousand records
or a million, and equals a recount of the raw records (tests/test_usage_rollup_recount.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, case, delete, func, select, union_all

from maas_gateway.database import Database
from maas_gateway.metering.records import USAGE_COLUMNS, UsageRecord
from maas_gateway.metering.rollups import NO_MODEL
from maas_gateway.metering.sql_writes import write_postgresql, write_sqlite
from maas_gateway.metering.store import BackendTotals, UsageQuery, UsageRow, report_order
from maas_gateway.metering.tables import daily_table_for, usage_hourly, usage_records

__all__ = ["SqlLedgerStore"]

HOUR = 3600
_DAILY = frozenset({"user", "tier", "model", "day", "team"})  # the report groups usage_daily can answer


class SqlLedgerStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def start(self) -> None:
        await self.database.ready()

    async def write(self, records: Sequence[UsageRecord]) -> None:
        """Store records and add them to the hourly rollups in one transaction; a record whose request
        id is already stored is skipped and not rolled up again (``sql_writes.py``)."""
        if not records:
            return
        if self.database.is_postgres:
            await write_postgresql(self.database.engine, records)
        else:
            await write_sqlite(self.database.engine, records)

    async def aggregate(self, query: UsageQuery) -> list[UsageRow]:
        first_hour, last_hour = math.ceil(query.since / HOUR), math.floor(query.until / HOUR)
        statements: list[Select[Any]] = []
        if first_hour < last_hour:
            statements.extend(_from_rollups(query, first_hour, last_hour))
            if query.since < first_hour * HOUR:
                statements.append(_from_records(query, query.since, first_hour * HOUR))
            if last_hour * HOUR < query.until:
                statements.append(_from_records(query, last_hour * HOUR, query.until))
        else:
            statements.append(_from_records(query, query.since, query.until))
        statement = statements[0]
        if len(statements) > 1:  # the parts are added up by the database, in one round trip
            parts = union_all(*statements).subquery("parts")
            groups = [parts.c[f"g_{name}"] for name in query.group_by]
            sums = [func.sum(parts.c[f"s{index}"]) for index in range(9)]
            statement = select(*groups, *sums)
            if groups:
                statement = statement.group_by(*groups)
        width = len(query.group_by)
        async with self.database.engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
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

    async def backend_totals(self, since: float, until: float) -> BackendTotals:
        table = usage_records.c
        statement = (
            select(
                table.backend,
                table.model,
                func.coalesce(func.sum(table.prompt_tokens), 0),
                func.coalesce(func.sum(table.completion_tokens), 0),
                func.count(),
            )
            .where(
                table.hour >= math.floor(since / HOUR),  # the hour bounds let the (hour, user) index help
                table.hour < math.ceil(until / HOUR),
                table.created_at >= since,
                table.created_at < until,
                table.backend.is_not(None),
            )
            .group_by(table.backend, table.model)
        )
        async with self.database.engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return {(row[0], row[1]): (int(row[2]), int(row[3]), int(row[4])) for row in rows}

    async def prune_raw(self, before_hour: int, *, limit: int) -> int:
        # One batch per transaction, found through the (hour, user) index: a short lock each time, so
        # the writer's inserts wait for a batch at most.
        await self.database.ready()  # the first prune may come before the ledger's first write migrated
        table = usage_records.c
        batch = select(table.request_id).where(table.hour < before_hour).limit(limit)
        statement = delete(usage_records).where(table.request_id.in_(batch.scalar_subquery()))
        async with self.database.engine.begin() as connection:
            result = await connection.execute(statement)
        return int(result.rowcount or 0)

    async def aclose(self) -> None:
        return None  # the database is shared; its owner closes it


def _from_rollups(query: UsageQuery, first_hour: int, last_hour: int) -> list[Select[Any]]:
    """Whole days from the daily rollups when the groups allow it, the other hours from the hourly ones."""
    first_day, last_day = -(-first_hour // 24), last_hour // 24
    needed = {*query.group_by, *(["user"] if query.user is not None else [])}
    daily = daily_table_for(needed) if needed <= _DAILY else None
    if daily is None or first_day >= last_day:
        return [_from_table(query, usage_hourly, first_hour, last_hour)]
    statements = [_from_table(query, daily, first_day, last_day)]
    if first_hour < first_day * 24:
        statements.append(_from_table(query, usage_hourly, first_hour, first_day * 24))
    if last_day * 24 < last_hour:
        statements.append(_from_table(query, usage_hourly, last_day * 24, last_hour))
    return statements


def _from_table(query: UsageQuery, rollups: Table, lower: int, upper: int) -> Select[Any]:
    table = rollups.c
    daily = "day" in table
    unit = table.day if daily else table.hour
    columns: dict[str, ColumnElement[Any]] = {
        # Floor division: SQLAlchemy 2's "/" is true division (it grouped by fractions of days).
        "day": table.day * 86400 if daily else (table.hour // 24) * 86400,
    }
    for name in ("user", "tier", "endpoint"):  # those this table has; it is only asked for those
        if name in table:
            columns[name] = table[name]
    if "model" in table:
        columns["model"] = func.nullif(table.model, NO_MODEL)
    if "team" in table:
        columns["team"] = func.nullif(table.team, "")  # '' is no team, reported as None
    if not daily:
        columns["hour"] = table.hour * HOUR

    def requests_where(outcome: str) -> ColumnElement[Any]:
        return func.coalesce(func.sum(case((table.outcome == outcome, table.requests), else_=0)), 0)

    sums = [
        func.coalesce(func.sum(table.requests), 0),
        requests_where("rate_limited"),
        requests_where("failed"),
        requests_where("broken"),
        *(
            func.coalesce(func.sum(table[name]), 0)
            for name in ("prompt_tokens", "completion_tokens", "total_tokens", "charged_tokens")
        ),
        func.coalesce(func.sum(table.cost), 0.0),
    ]
    groups = [columns[name].label(f"g_{name}") for name in query.group_by]
    statement = select(*groups, *_labelled(sums)).where(unit >= lower, unit < upper)
    if query.user is not None:
        statement = statement.where(table.user == query.user)
    return statement.group_by(*groups) if groups else statement


def _from_records(query: UsageQuery, since: float, until: float) -> Select[Any]:
    table = usage_records.c
    columns: dict[str, ColumnElement[Any]] = {
        "user": table.user,
        "tier": table.tier,
        "model": table.model,
        "endpoint": table.endpoint,
        "day": (table.hour // 24) * 86400,
        "hour": table.hour * HOUR,
        "team": func.nullif(table.team, ""),
    }
    sums = [
        func.count(),
        func.coalesce(func.sum(func.cast(table.rate_limited, table.status.type)), 0),
        func.coalesce(func.sum(func.cast(table.failed, table.status.type)), 0),
        # As the outcome counts it: a failed or rate-limited request is not also counted broken.
        func.coalesce(func.sum(case((table.rate_limited | table.failed, 0), (table.broken, 1), else_=0)), 0),
        func.coalesce(func.sum(table.prompt_tokens), 0),
        func.coalesce(func.sum(table.completion_tokens), 0),
        func.coalesce(func.sum(table.total_tokens), 0),
        func.coalesce(func.sum(table.charged_tokens), 0),
        func.coalesce(func.sum(table.cost), 0.0),
    ]
    groups = [columns[name].label(f"g_{name}") for name in query.group_by]
    # The hour bounds let the database use its (hour, user) index; created_at is the exact range.
    statement = select(*groups, *_labelled(sums)).where(
        table.hour >= math.floor(since / HOUR),
        table.hour < math.ceil(until / HOUR),
        table.created_at >= since,
        table.created_at < until,
    )
    if query.user is not None:
        statement = statement.where(table.user == query.user)
    return statement.group_by(*groups) if groups else statement


def _labelled(sums: Sequence[ColumnElement[Any]]) -> list[ColumnElement[Any]]:
    return [total.label(f"s{index}") for index, total in enumerate(sums)]


def _plain(value: Any) -> str | int | None:
    if value is None or isinstance(value, str):
        return value
    return int(value)
