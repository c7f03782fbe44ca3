"""Hourly and daily rollups stay exact on SQLite and PostgreSQL: kept in the raw insert's transaction,
counted once when a batch is rewritten or a spool replayed, adding up when two replicas write the same
hour at once, built by the migration's backfill exactly as the writer builds them, never half-written."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from maas_gateway.database import Database, metadata
from maas_gateway.database.migrations import alembic_config
from maas_gateway.metering import LedgerWriter, Spool, UsageRecord
from maas_gateway.metering.memory_rollups import MemoryRollups
from maas_gateway.metering.outage import OutagePolicy
from maas_gateway.metering.rollups import NO_MODEL, rollup_select
from maas_gateway.metering.sql_store import SqlLedgerStore
from maas_gateway.metering.tables import ROLLUP_TABLES, usage_records
from tests.support.clock import FakeClock
from tests.support.postgres_server import throwaway_database

BASE = 1_796_000_000 - 1_796_000_000 % 86400
Rollups = dict[tuple[Any, ...], tuple[Any, ...]]  # dimensions → measures


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of the parametrized kind."""
    with throwaway_database(request.param, tmp_path) as database_url:
        yield database_url


def record(index: int, **fields: Any) -> UsageRecord:
    """Records spread over four users, three models (one missing), two teams and none, every outcome and
    a few hours."""
    values: dict[str, Any] = {
        "request_id": f"req-{index:06d}",
        "created_at": BASE + (index * 997) % (50 * 3600) + 0.5,  # three days
        "user": f"user-{index % 4}",
        "tier": "free" if index % 5 else "premium",
        "key_id": f"key-{index % 2}",
        "model": (None, "m1", "m2")[index % 3],
        "endpoint": "/v1/chat/completions" if index % 7 else "/v1/embeddings",
        "status": 200,
        "prompt_tokens": index % 50,
        "completion_tokens": index % 30,
        "total_tokens": index % 50 + index % 30,
        "charged_tokens": index % 50 + index % 30,
        "cost": (index % 13) / 1000,
        "streamed": index % 2 == 0,
        "rate_limited": False,
        "usage_estimated": False,
        "latency_ms": float(index % 11),
        "team": ("", "research", "platform")[index % 5 % 3],
    }
    if index % 11 == 0:
        values |= {"status": 429, "rate_limited": True}
    elif index % 13 == 0:
        values |= {"status": 502, "failed": True}
    elif index % 17 == 0:
        values |= {"status": 400}
    values.update(fields)
    return UsageRecord(**values)


async def stored_rollups(database: Database) -> tuple[Rollups, ...]:
    """Every rollup table as stored, finest first."""
    return tuple(
        [await _rows(database, select(table), len(table.primary_key.columns)) for table in ROLLUP_TABLES]
    )


async def recounted_rollups(database: Database) -> tuple[Rollups, ...]:
    """The rollups a recount of every stored raw record gives (the writer's aggregation)."""
    return tuple(
        [
            await _rows(database, rollup_select(usage_records, table), len(table.primary_key.columns))
            for table in ROLLUP_TABLES
        ]
    )


async def _rows(database: Database, statement: Any, width: int) -> Rollups:
    async with database.engine.connect() as connection:
        rows = (await connection.execute(statement)).all()
    return {tuple(row[:width]): _rounded(row[width:]) for row in rows}


def memory_rollups(records: list[UsageRecord]) -> tuple[Rollups, ...]:
    """The rollups the in-memory ledger keeps (Python's ``outcome_of``, not SQL's), summed up into each
    coarser table's dimensions."""
    rollups = MemoryRollups()
    for item in records:
        rollups.add(item)
    hourly = {
        (*key[:3], key[3] if key[3] is not None else NO_MODEL, *key[4:]): sums
        for key, sums in rollups.buckets.items()
    }
    coarse: list[dict[tuple[Any, ...], list[float]]] = [{}, {}, {}, {}]
    for (hour, user, tier, model, _endpoint, _key, outcome, team), sums in hourly.items():
        day = hour // 24
        keys = (
            (day, user, tier, model, outcome, team),
            (day, team, tier, model, outcome),
            (day, user, tier, outcome),
            (day, tier, model, outcome),
        )
        for table, key in zip(coarse, keys, strict=True):
            target = table.setdefault(key, [0] * len(sums))
            for index, value in enumerate(sums):
                target[index] += value
    return tuple({key: _rounded(sums) for key, sums in table.items()} for table in [hourly, *coarse])


def _rounded(values: Any) -> tuple[Any, ...]:
    """Sums with float ones rounded: the order of additions differs between a recount and a rollup."""
    return tuple(round(float(value), 9) if isinstance(value, float) else int(value) for value in values)


def test_a_rewritten_batch_is_rolled_up_once(url: str) -> None:
    """Batches written again, whole, in part and mixed with new records, leave rollups equal to a recount
    of the raw records, and to what the in-memory ledger counts for the same records."""

    async def main() -> None:
        database = Database(url)
        store = SqlLedgerStore(database)
        await store.start()
        records = [record(index) for index in range(600)]
        await store.write(records[:300])
        await store.write(records[:300])  # a retried batch that had in fact committed
        await store.write(records[200:600])  # overlapping
        await store.write([*records[::7], records[3], records[3]])  # duplicates within one batch
        rollups = await stored_rollups(database)
        assert rollups == await recounted_rollups(database)
        assert rollups == memory_rollups(records)
        assert [sum(sums[0] for sums in table.values()) for table in rollups] == [600] * len(ROLLUP_TABLES)
        await database.aclose()

    asyncio.run(main())


def test_a_replayed_spool_is_not_counted_twice(url: str, tmp_path: Path) -> None:
    """Records already stored and also left in the spool (a crash after the commit, before the spool file
    was deleted) are replayed at the next start without changing any rollup."""

    async def main() -> None:
        database = Database(url)
        spool = Spool(tmp_path / "spool")
        records = [record(index) for index in range(250)]
        writer = LedgerWriter(SqlLedgerStore(database), spool, batch_size=100)
        await writer.start()
        for item in records:
            writer.submit(item)
        await writer.stop()
        before = await stored_rollups(database)
        spool.append(records[50:])  # the replay a crashed run leaves behind
        spool.append(records[:10])
        replaying = LedgerWriter(SqlLedgerStore(database), spool, batch_size=100)
        await replaying.start()
        assert not spool.pending()
        assert not list(spool.directory.glob("usage-spool.replay-*"))
        await replaying.stop()
        assert await stored_rollups(database) == before
        assert sum(sums[0] for sums in before[1].values()) == 250
        await database.aclose()

    asyncio.run(main())


def test_two_replicas_writing_the_same_hours_add_up(url: str) -> None:
    """Two writers on their own connections store batches in the same hours at the same time, and both
    replay a shared set of records: rollups equal a recount, nothing deadlocks or is lost."""

    async def replica(database: Database, batches: list[list[UsageRecord]]) -> None:
        store = SqlLedgerStore(database)
        await store.start()
        for batch in batches:
            await store.write(batch)

    async def main() -> None:
        first, second = Database(url), Database(url)
        await first.ready()
        records = [record(index) for index in range(3000)]
        shared = records[2000:]  # both replay these, in a different batching
        own_a, own_b = records[0:2000:2], records[1:2000:2]
        batches_a = [own_a[i : i + 100] + shared[i : i + 100] for i in range(0, 1000, 100)]
        batches_b = [own_b[i : i + 100] + shared[::-1][i : i + 100] for i in range(0, 1000, 100)]
        await asyncio.gather(replica(first, batches_a), replica(second, batches_b))
        rollups = await stored_rollups(first)
        assert rollups == await recounted_rollups(first)
        assert rollups == memory_rollups(records)
        await first.aclose()
        await second.aclose()

    asyncio.run(main())


def test_the_backfill_builds_what_the_writer_builds(url: str) -> None:
    """Records stored before rollups existed (at revision 0004) are rolled up by migration 0006 as the
    writer would have, outcome by outcome: equal to the in-memory ledger's rollups of the same records
    (and, after 0009, of no team, with the team rollup backfilled)."""

    async def main() -> None:
        records = [record(index, team="") for index in range(400)]  # before teams: none has one
        old = Database(url, migrate=False)
        async with old.engine.begin() as connection:
            await connection.run_sync(lambda sync: _upgrade_to(sync, "0004"))
            # Only the columns revision 0004 has (later revisions add some at the end).
            old_columns = [column.name for column in usage_records.columns]
            old_columns = old_columns[: old_columns.index("failed") + 1]
            await connection.execute(
                insert(usage_records).values(),
                [{**_only(item.to_dict(), old_columns), "hour": item.hour} for item in records],
            )
        await old.aclose()
        database = Database(url)
        await database.ready()
        assert await stored_rollups(database) == memory_rollups(records)
        await database.aclose()

    asyncio.run(main())


def _only(values: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if name in columns}


def _upgrade_to(connection: Any, revision: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), revision)


def test_a_failed_rollup_stores_no_raw_record_and_the_spool_recovers(url: str, tmp_path: Path) -> None:
    """When the rollup half of a write fails (a database trigger refuses it), the raw half is rolled back
    too; the writer spools the batch, and once the database takes writes again each record counts once."""

    async def main() -> None:
        database = Database(url)
        await database.ready()
        await _refuse_rollups(database, True)
        clock = FakeClock(1000.0)
        spool = Spool(tmp_path / "spool")
        writer = LedgerWriter(SqlLedgerStore(database), spool, outage=OutagePolicy(clock=clock))
        await writer.start()
        records = [record(index) for index in range(120)]
        for item in records:
            writer.submit(item)
        assert await writer.flush() is False
        assert writer.outage.down
        assert spool.pending()
        async with database.engine.connect() as connection:
            assert (await connection.execute(text("SELECT count(*) FROM usage_records"))).scalar() == 0
        await _refuse_rollups(database, False)
        assert await writer.flush() is True
        await writer.stop()
        assert await stored_rollups(database) == memory_rollups(records)
        await database.aclose()

    asyncio.run(main())


async def _refuse_rollups(database: Database, refuse: bool) -> None:
    """A trigger that makes every change to usage_hourly fail: a fault in the database, not in our code."""
    statements: list[str]
    if database.is_postgres:
        statements = (
            [
                "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ "
                "LANGUAGE plpgsql",
                "CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON usage_hourly "
                "FOR EACH ROW EXECUTE FUNCTION refuse()",
            ]
            if refuse
            else ["DROP TRIGGER refuse ON usage_hourly", "DROP FUNCTION refuse()"]
        )
    else:
        statements = (
            [
                "CREATE TRIGGER refuse BEFORE INSERT ON usage_hourly "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END",
            ]
            if refuse
            else ["DROP TRIGGER refuse"]
        )
    async with database.engine.begin() as connection:
        for statement in statements:
            await connection.execute(text(statement))


def test_the_migration_creates_what_the_tables_declare(url: str) -> None:
    """Migrations 0006 and 0010 create the rollup tables, keys and indexes, the usage records' columns and
    the backend readings that metering/tables.py declares (the writer's upserts name their primary keys
    as conflict targets)."""

    def differences(connection: Any) -> list[Any]:
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        return list(compare_metadata(MigrationContext.configure(connection), metadata))

    async def main() -> None:
        database = Database(url)
        await database.ready()
        async with database.engine.connect() as connection:
            found = await connection.run_sync(differences)
        await database.aclose()
        names = {table.name for table in ROLLUP_TABLES} | {"ix_usage_records_user_created"}
        names |= {"backend_token_readings", "usage_records"}  # migration 0010's table and columns
        assert [difference for difference in found if any(name in repr(difference) for name in names)] == []

    asyncio.run(main())
