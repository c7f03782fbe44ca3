"""Rollups of the usage ledger: the one SQL aggregation that builds each rollup table, and its upsert.

The same ``rollup_select`` fills the rollup tables in every batch the writer stores (over the rows that
batch actually inserted) and in tests' recounts; migration 0006's backfill writes it out as SQL text, and
a test holds the two equal. ``outcomes.outcome_of`` is its Python twin for the in-memory ledger.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, FromClause, Select, Table, case, func, literal, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from maas_gateway.metering.tables import ROLLUP_MEASURES, dimensions_of, usage_hourly

__all__ = ["NO_MODEL", "rollup_select", "rollup_upsert"]

NO_MODEL = ""  # the rollups' model for a request without a model (reported as None)


def _outcome(source: FromClause) -> ColumnElement[Any]:
    """``outcomes.outcome_of`` in SQL."""
    column = source.c
    return case(
        (column.rate_limited, literal("rate_limited")),
        (column.failed, literal("failed")),
        (column.broken, literal("broken")),
        (column.status >= 400, literal("client_error")),
        else_=literal("ok"),
    )


def _dimension(source: FromClause, name: str) -> ColumnElement[Any]:
    column = source.c
    if name == "day":
        return column.hour // 24  # integer division on both engines
    if name == "model":
        return func.coalesce(column.model, literal(NO_MODEL))
    if name == "outcome":
        return _outcome(source)
    return column[name]


def _count(flag: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.sum(case((flag, 1), else_=0))


def rollup_select(source: FromClause, table: Table = usage_hourly) -> Select[Any]:
    """Rows of the rollup ``table`` (its columns, in order) summed from ``source``, a selectable with the
    columns of ``usage_records``: the table, or the rows a batch inserted."""
    column = source.c
    names = dimensions_of(table)
    dimensions = [_dimension(source, name) for name in names]
    measures: list[ColumnElement[Any]] = [
        func.count(),
        func.sum(column.prompt_tokens),
        func.sum(column.completion_tokens),
        func.sum(column.total_tokens),
        func.sum(column.charged_tokens),
        func.sum(column.cost),
        _count(column.streamed),
        func.sum(column.latency_ms),
    ]
    labelled = [
        expression.label(name)
        for expression, name in zip([*dimensions, *measures], [*names, *ROLLUP_MEASURES], strict=True)
    ]
    # Grouped (and ordered) by the dimensions in primary-key order: two writers then lock the rows
    # they add to in the same order, so they wait for each other instead of deadlocking.
    return select(*labelled).select_from(source).group_by(*dimensions).order_by(*dimensions)


def rollup_upsert(dialect: str, rows: Select[Any], table: Table = usage_hourly) -> Any:
    """``INSERT INTO <table> <rows> ON CONFLICT DO UPDATE`` adding each measure to the stored one."""
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    dimensions = dimensions_of(table)
    statement = insert(table).from_select([*dimensions, *ROLLUP_MEASURES], rows)
    return statement.on_conflict_do_update(
        index_elements=list(dimensions),
        set_={name: table.c[name] + statement.excluded[name] for name in ROLLUP_MEASURES},
    )
