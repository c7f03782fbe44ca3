"""Storing a batch of usage records and adding it to the hourly rollups, in one transaction.

A record can arrive twice: a batch retried after a timeout that had in fact committed, a spool replayed
after a crash, or replayed by two workers at once. The raw insert skips a request id already stored
(``ON CONFLICT DO NOTHING``), and only the rows this transaction actually inserted are rolled up, so a
replay adds nothing. Raw rows and rollups commit together or not at all.

- PostgreSQL: one statement. The batch arrives as one array per column (``unnest``), the raw insert's
  ``RETURNING`` rows feed each rollup table's upsert in turn through data-modifying CTEs. A concurrent
  transaction inserting the same request id makes ours wait and then skip it, so each record is rolled
  up once; two replicas adding to the same hour serialise on that rollup row and both additions count.
  Each upsert takes its rows' locks in key order (the aggregation is sorted), one table after the other
  (each waits for the previous one's result), so two writers wait for each other but never deadlock.
- SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock first, so nothing can change between
  reading which ids are already stored and inserting the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from maas_gateway.metering.records import USAGE_COLUMNS, UsageRecord
from maas_gateway.metering.rollups import rollup_select, rollup_upsert
from maas_gateway.metering.tables import ROLLUP_TABLES, usage_records

__all__ = ["write_postgresql", "write_sqlite"]

_COLUMNS = (*USAGE_COLUMNS, "hour")
_SQLITE_IDS_PER_QUERY = 5000  # well under SQLite's 32,766 bound parameters per statement


def _postgresql_statement() -> Any:
    arrays = [bindparam(name, type_=ARRAY(usage_records.c[name].type)) for name in _COLUMNS]
    batch = func.unnest(*arrays).table_valued(*_COLUMNS).render_derived()
    inserted = (
        postgresql_insert(usage_records)
        .from_select(list(_COLUMNS), select(*[batch.c[name] for name in _COLUMNS]))
        .on_conflict_do_nothing(index_elements=["request_id"])
        .returning(*usage_records.c)
        .cte("inserted")
    )
    # Each upsert starts once the one before has finished (the scalar subquery on its result): a fixed
    # order of locks across the tables, finest first, the hottest rows (no user) last. Sibling CTEs
    # would run in no promised order.
    previous = None
    for table in ROLLUP_TABLES:
        rows = rollup_select(inserted, table)
        if previous is not None:
            rows = rows.where(select(func.count()).select_from(previous).scalar_subquery() >= 0)
        upsert = rollup_upsert("postgresql", rows, table)
        if table is ROLLUP_TABLES[-1]:
            return upsert
        previous = upsert.returning(literal(1).label("done")).cte(f"{table.name}_done")
    raise AssertionError("ROLLUP_TABLES is never empty")


_POSTGRESQL = _postgresql_statement()  # built once: SQLAlchemy caches its compiled form


async def write_postgresql(engine: AsyncEngine, records: Sequence[UsageRecord]) -> None:
    # Sorted by request id, so two writers replaying the same records lock them in the same order.
    ordered = sorted(records, key=lambda record: record.request_id)
    columns: dict[str, list[Any]] = {name: [getattr(r, name) for r in ordered] for name in USAGE_COLUMNS}
    columns["hour"] = [record.hour for record in ordered]
    async with engine.begin() as connection:
        await connection.execute(_POSTGRESQL, columns)


async def write_sqlite(engine: AsyncEngine, records: Sequence[UsageRecord]) -> None:
    ids = [record.request_id for record in records]
    async with engine.connect() as connection:
        # The driver would begin at the first INSERT, after the read below: too late.
        await connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            stored: set[str] = set()
            for start in range(0, len(ids), _SQLITE_IDS_PER_QUERY):
                chunk = ids[start : start + _SQLITE_IDS_PER_QUERY]
                result = await connection.execute(
                    select(usage_records.c.request_id).where(usage_records.c.request_id.in_(chunk))
                )
                stored.update(result.scalars())
            fresh: dict[str, UsageRecord] = {}
            for record in records:
                if record.request_id not in stored:
                    fresh.setdefault(record.request_id, record)  # the first of a batch's duplicates wins
            if fresh:
                rows = [{**record.to_dict(), "hour": record.hour} for record in fresh.values()]
                statement = sqlite_insert(usage_records).on_conflict_do_nothing(index_elements=["request_id"])
                await connection.execute(statement, rows)
                new_ids = list(fresh)
                for start in range(0, len(new_ids), _SQLITE_IDS_PER_QUERY):
                    chunk = new_ids[start : start + _SQLITE_IDS_PER_QUERY]
                    fresh_rows = usage_records.c.request_id.in_(chunk)
                    for table in ROLLUP_TABLES:
                        sums = rollup_select(usage_records, table).where(fresh_rows)
                        await connection.execute(rollup_upsert("sqlite", sums, table))
            await connection.commit()
        except BaseException:
            await connection.rollback()
            raise
