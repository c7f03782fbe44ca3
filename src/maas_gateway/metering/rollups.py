"""Hourly rollups of the usage ledger: the one SQL aggregation that builds them, and their upsert.

The same ``rollup_select`` fills ``usage_hourly`` in the migration's backfill, in every batch the writer
stores (over the rows that batch actually inserted) and in the benchmark, so the three cannot drift.
``outcomes.outcome_of`` is its Python twin for the in-memory ledger; tests hold the two equal.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, FromClause, Select, Table, case, func, literal, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from maas_gateway.metering.tables import (
    DAILY_DIMENSIONS,
    ROLLUP_DIMENSIONS,
    ROLLUP_MEASURES,
    usage_daily,
    usage_hourly,
)

__all__ = ["NO_MODEL", "daily_select", "daily_upsert", "rollup_select", "rollup_upsert"]

NO_MODEL = ""  # usage_hourly.model for a request without a model (reported as None)


def _outcome(source: FromClause) -> ColumnElement[Any]:
    """``outcomes.outcome_of`` in SQL."""
    column = source.c
    return case(
        (column.rate_limited, literal("rate_limited")),
        (column.failed, literal("failed")),
        (column.status >= 400, literal("client_error")),
        else_=literal("ok"),
    )


def _count(flag: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.sum(case((flag, 1), else_=0))


def rollup_select(source: FromClause) -> Select[Any]:
    """Rows of ``usage_hourly`` (its columns, in order) summed from ``source``, a selectable with the
    columns of ``usage_records``: the table, a filtered alias, or the rows a batch inserted."""
    column = source.c
    model = func.coalesce(column.model, literal(NO_MODEL))
    dimensions = [
        column.hour,
        column.user,
        column.tier,
        model,
        column.endpoint,
        column.key_id,
        _outcome(source),
    ]
    return _summed(source, dimensions, ROLLUP_DIMENSIONS)


def daily_select(source: FromClause) -> Select[Any]:
    """Rows of ``usage_daily`` summed from ``source`` (as for ``rollup_select``)."""
    column = source.c
    model = func.coalesce(column.model, literal(NO_MODEL))
    dimensions = [column.hour // 24, column.user, column.tier, model, _outcome(source)]
    return _summed(source, dimensions, DAILY_DIMENSIONS)


def _summed(source: FromClause, dimensions: list[ColumnElement[Any]], names: tuple[str, ...]) -> Select[Any]:
    column = source.c
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


def rollup_upsert(dialect: str, rows: Select[Any]) -> Any:
    """``INSERT INTO usage_hourly <rows> ON CONFLICT DO UPDATE`` adding each measure to the stored one."""
    return _upsert(dialect, usage_hourly, ROLLUP_DIMENSIONS, rows)


def daily_upsert(dialect: str, rows: Select[Any]) -> Any:
    """As ``rollup_upsert``, into ``usage_daily``."""
    return _upsert(dialect, usage_daily, DAILY_DIMENSIONS, rows)


def _upsert(dialect: str, table: Table, dimensions: tuple[str, ...], rows: Select[Any]) -> Any:
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(table).from_select([*dimensions, *ROLLUP_MEASURES], rows)
    return statement.on_conflict_do_update(
        index_elements=list(dimensions),
        set_={name: table.c[name] + statement.excluded[name] for name in ROLLUP_MEASURES},
    )
