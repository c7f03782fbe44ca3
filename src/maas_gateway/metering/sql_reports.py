"""``UsageReports`` over the rollups in SQL, and the raw records only for a user's last calls.

Whole days are read from the smallest daily rollups that have the dimensions asked for (none has the
hour, endpoint or key), the hours around them from ``usage_hourly``; by their primary key (time first)
or by ``(user, time)``, so a page costs about the same with a thousand records or a million
(bench/portal_usage.py measures it).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    Table,
    case,
    func,
    literal_column,
    select,
    union_all,
)

from maas_gateway.database import Database
from maas_gateway.metering.outcomes import OUTCOMES
from maas_gateway.metering.records import USAGE_COLUMNS, UsageRecord
from maas_gateway.metering.reports import (
    Dimension,
    Measure,
    ReportRange,
    UsageGroup,
    UsageTotals,
    check_after,
    check_dimensions,
    group_order,
)
from maas_gateway.metering.rollups import NO_MODEL
from maas_gateway.metering.tables import daily_table_for, usage_hourly, usage_records

__all__ = ["SqlUsageReports"]

_MEASURE_FIELDS = tuple(field.name for field in fields(UsageTotals))


def _number(value: int) -> ColumnElement[Any]:
    return literal_column(str(value), Integer)


def _dimension(table: Table, name: Dimension) -> ColumnElement[Any]:
    """A dimension's expression. Constants are written inline, not bound: PostgreSQL must see the same
    text in GROUP BY and ORDER BY (two bound parameters are two different expressions to it)."""
    column = table.c
    if name == "model":
        return func.nullif(column.model, literal_column(f"'{NO_MODEL}'", String))
    if name == "team":  # '' is no team, reported as None like a missing model
        return func.nullif(column.team, literal_column("''", String))
    if name == "day":
        if "day" in column:
            return column.day * _number(86400)
        return (column.hour // _number(24)) * _number(86400)  # "//": SQLAlchemy 2's "/" is true division
    if name == "hour":
        return column.hour * _number(3600)
    return column[name]


def _sums(table: Table) -> list[ColumnElement[Any]]:
    """In ``UsageTotals`` field order."""
    column = table.c

    def summed(value: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.coalesce(func.sum(value), 0)

    by_outcome = [summed(case((column.outcome == name, column.requests), else_=0)) for name in OUTCOMES]
    return [
        summed(column.requests),
        *by_outcome,
        *(summed(column[name]) for name in ("prompt_tokens", "completion_tokens", "total_tokens")),
        summed(column.charged_tokens),
        summed(column.cost),
        summed(column.streamed),
        summed(column.latency_ms),
    ]


Users = str | Sequence[str] | None  # one user, some users, or everyone


def _parts(period: ReportRange, group_by: Sequence[Dimension], user: Users) -> list[tuple[Table, int, int]]:
    """Where each stretch of the period is read: whole days from the smallest daily rollups that have
    the dimensions asked for, the hours around them (or everything) from the hourly ones. Bounds in the
    table's unit."""
    first_day, last_day = -(-period.first_hour // 24), period.last_hour // 24
    daily = daily_table_for({*group_by, *(["user"] if user is not None else [])})
    if daily is None or first_day >= last_day:
        return [(usage_hourly, period.first_hour, period.last_hour)]
    parts = [(daily, first_day, last_day)]
    if period.first_hour < first_day * 24:
        parts.append((usage_hourly, period.first_hour, first_day * 24))
    if last_day * 24 < period.last_hour:
        parts.append((usage_hourly, last_day * 24, period.last_hour))
    return parts


def _partial(table: Table, lower: int, upper: int, group_by: Sequence[Dimension], user: Users) -> Select[Any]:
    groups = [_dimension(table, name).label(f"g{index}") for index, name in enumerate(group_by)]
    sums = [total.label(name) for total, name in zip(_sums(table), _MEASURE_FIELDS, strict=True)]
    unit = table.c.day if "day" in table.c else table.c.hour
    statement = select(*groups, *sums).where(unit >= lower, unit < upper)
    if user is not None:
        statement = statement.where(
            table.c.user == user if isinstance(user, str) else table.c.user.in_(list(user))
        )
    return statement.group_by(*groups)


def _grouped(
    period: ReportRange, group_by: Sequence[Dimension], user: Users
) -> tuple[Select[Any], list[ColumnElement[Any]], dict[str, ColumnElement[Any]]]:
    """The grouped statement (without order or limit), its group columns and its measures by name."""
    parts = _parts(period, group_by, user)
    if len(parts) == 1:
        [(table, lower, upper)] = parts
        statement = _partial(table, lower, upper, group_by, user)
        groups = [_dimension(table, name) for name in group_by]
        measures = dict(zip(_MEASURE_FIELDS, _sums(table), strict=True))
    else:
        both = union_all(*(_partial(*part, group_by, user) for part in parts)).subquery("parts")
        groups = [both.c[f"g{index}"] for index in range(len(group_by))]
        measures = {name: func.sum(both.c[name]) for name in _MEASURE_FIELDS}
        statement = select(*groups, *measures.values()).group_by(*groups)
    # HAVING: without groups, an empty range would still give one row of zeros.
    return statement.having(measures["requests"] > 0), groups, measures


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
        after: Sequence[str | int | None] | None = None,
    ) -> list[UsageGroup]:
        check_dimensions(group_by)
        check_after(group_by, after)
        if limit is not None and user is None and len(group_by) > 1 and group_by[0] == "user":
            return await self._page_by_user(period, group_by, limit, offset, after)
        if after is None:
            return await self._ordered(period, group_by, user, limit, offset)
        # Other breakdowns are small (their groups are few) or read whole anyway (a user's own series).
        groups = _after(await self._ordered(period, group_by, user, None, 0), after)
        return groups[offset : None if limit is None else offset + limit]

    async def _ordered(
        self, period: ReportRange, group_by: Sequence[Dimension], user: Users, limit: int | None, offset: int
    ) -> list[UsageGroup]:
        statement, groups, _ = _grouped(period, group_by, user)
        statement = statement.order_by(*(self._ascending(group) for group in groups))
        return await self._groups(statement.limit(limit).offset(offset), group_by)

    async def _page_by_user(
        self,
        period: ReportRange,
        group_by: Sequence[Dimension],
        limit: int,
        offset: int,
        after: Sequence[str | int | None] | None,
    ) -> list[UsageGroup]:
        """A page of a breakdown led by the user, read a few users at a time (by the ``(user, time)``
        index) until it is full: a month by user, model and day has as many groups as rows, and sorting
        them all for one page took seconds. The groups and their order are the same. With ``after`` the
        reading starts at that group's user (users sort by code point, in Python as in the query), so
        a deep page costs what the first does; by ``offset`` alone it reads every earlier group."""
        users = [str(group.key["user"]) for group in await self._ordered(period, ("user",), None, None, 0)]
        start = 0 if after is None else bisect.bisect_left(users, str(after[0]))
        found: list[UsageGroup] = []
        size = 4
        while start < len(users) and len(found) < offset + limit:
            chunk = await self._ordered(period, group_by, users[start : start + size], None, 0)
            found.extend(chunk if after is None else _after(chunk, after))
            start, size = start + size, size * 2
        return found[offset : offset + limit]

    async def top(
        self, period: ReportRange, dimension: Dimension, *, by: Measure = "cost", limit: int = 10
    ) -> list[UsageGroup]:
        check_dimensions((dimension,))
        statement, [group], measures = _grouped(period, (dimension,), None)
        statement = statement.order_by(measures[by].desc(), self._ascending(group)).limit(limit)
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


def _after(groups: list[UsageGroup], after: Sequence[str | int | None]) -> list[UsageGroup]:
    """The groups that come after the key ``after`` in breakdown order."""
    last = group_order(after)
    return [group for group in groups if group_order(group.key.values()) > last]


def _plain(value: Any) -> str | int | None:
    if value is None or isinstance(value, str):
        return value
    return int(value)
