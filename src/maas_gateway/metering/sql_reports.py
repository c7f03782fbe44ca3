"""``UsageReports`` over the hourly rollups in SQL, and the raw records only for a user's last calls.

Every query reads ``usage_hourly`` by its primary key (hour first) or by ``(user, hour)``: a page costs
the same with a thousand records or a million (bench/portal_usage.py measures it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, String, case, func, select

from maas_gateway.database import Database
from maas_gateway.metering.outcomes import OUTCOMES
from maas_gateway.metering.records import USAGE_COLUMNS, UsageRecord
from maas_gateway.metering.reports import (
    Dimension,
    Measure,
    ReportRange,
    UsageGroup,
    UsageTotals,
    check_dimensions,
)
from maas_gateway.metering.rollups import NO_MODEL
from maas_gateway.metering.tables import usage_hourly, usage_records

__all__ = ["SqlUsageReports"]

_TABLE = usage_hourly.c


def _dimension(name: Dimension) -> ColumnElement[Any]:
    if name == "model":
        return func.nullif(_TABLE.model, NO_MODEL)
    if name == "day":
        return (_TABLE.hour // 24) * 86400  # floor division: "/" is true division in SQLAlchemy 2
    if name == "hour":
        return _TABLE.hour * 3600
    return _TABLE[name]


def _sums() -> list[ColumnElement[Any]]:
    """In ``UsageTotals`` field order."""

    def summed(column: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(column), 0)

    by_outcome = [summed(case((_TABLE.outcome == name, _TABLE.requests), else_=0)) for name in OUTCOMES]
    return [
        summed(_TABLE.requests),
        *by_outcome,
        *(summed(_TABLE[name]) for name in ("prompt_tokens", "completion_tokens", "total_tokens")),
        summed(_TABLE.charged_tokens),
        summed(_TABLE.cost),
        summed(_TABLE.streamed),
        summed(_TABLE.latency_ms),
    ]


class SqlUsageReports:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def totals(self, period: ReportRange, *, user: str | None = None) -> UsageTotals:
        groups = await self.breakdown(period, (), user=user)
        return groups[0].totals if groups else UsageTotals()

    async def breakdown(
        self,
        period: ReportRange,
        group_by: Sequence[Dimension],
        *,
        user: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[UsageGroup]:
        check_dimensions(group_by)
        groups = [_dimension(name) for name in group_by]
        statement = self._grouped(period, groups, user)
        statement = statement.order_by(*(self._ascending(group) for group in groups))
        return await self._groups(statement.limit(limit).offset(offset), group_by)

    async def top(
        self, period: ReportRange, dimension: Dimension, *, by: Measure = "cost", limit: int = 10
    ) -> list[UsageGroup]:
        check_dimensions((dimension,))
        group = _dimension(dimension)
        measure = func.sum(_TABLE.requests if by == "requests" else _TABLE[by])
        statement = self._grouped(period, [group], None)
        statement = statement.order_by(measure.desc(), self._ascending(group)).limit(limit)
        return await self._groups(statement, (dimension,))

    async def recent_calls(self, user: str, limit: int = 20) -> list[UsageRecord]:
        table = usage_records.c
        statement = (
            select(*(table[name] for name in USAGE_COLUMNS))
            .where(table.user == user)
            .order_by(table.created_at.desc(), table.request_id.desc())
            .limit(limit)
        )
        async with self.database.engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        return [UsageRecord(*row) for row in rows]

    def _grouped(
        self, period: ReportRange, groups: list[ColumnElement[Any]], user: str | None
    ) -> Select[Any]:
        statement = select(*groups, *_sums()).where(
            _TABLE.hour >= period.first_hour, _TABLE.hour < period.last_hour
        )
        if user is not None:
            statement = statement.where(_TABLE.user == user)
        # HAVING: without groups, an empty range would still give one row of zeros.
        return statement.group_by(*groups).having(func.count() > 0)

    def _ascending(self, group: ColumnElement[Any]) -> ColumnElement[Any]:
        # By code point on both engines: PostgreSQL's default collation would order by language rules.
        if self.database.is_postgres and isinstance(group.type, String):
            group = group.collate("C")
        return group.asc().nulls_last()

    async def _groups(self, statement: Select[Any], group_by: Sequence[Dimension]) -> list[UsageGroup]:
        async with self.database.engine.connect() as connection:
            rows = (await connection.execute(statement)).all()
        width = len(group_by)
        return [
            UsageGroup(
                dict(zip(group_by, (_plain(v) for v in row[:width]), strict=True)),
                UsageTotals.of(row[width:]),
            )
            for row in rows
        ]


def _plain(value: Any) -> str | int | None:
    if value is None or isinstance(value, str):
        return value
    return int(value)
