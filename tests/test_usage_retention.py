"""Retention of raw usage records: pruned in batches past ``database.raw_retention`` while the rollups
stay, so reports over the pruned hours answer as they did before (memory, SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from maas_gateway.config.settings import DatabaseSettings
from maas_gateway.database import Database
from maas_gateway.metering import InMemoryUsageReports, UsageQuery, UsageReports
from maas_gateway.metering.readings import BackendReading, InMemoryBackendReadings
from maas_gateway.metering.records import UsageRecord
from maas_gateway.metering.reports import ReportRange
from maas_gateway.metering.retention import RawRetention
from maas_gateway.metering.sql_readings import SqlBackendReadings
from maas_gateway.metering.sql_reports import SqlUsageReports
from maas_gateway.metering.sql_store import SqlLedgerStore
from maas_gateway.metering.store import InMemoryLedgerStore
from maas_gateway.metering.tables import ROLLUP_TABLES, usage_records
from tests.support.clock import FakeClock
from tests.support.postgres_server import throwaway_database

HOUR = 3600
DAY = 86400
BASE = 1_796_000_000 - 1_796_000_000 % DAY  # a UTC midnight
Store = InMemoryLedgerStore | SqlLedgerStore
Readings = InMemoryBackendReadings | SqlBackendReadings
Contract = Callable[[Store, UsageReports, Readings, Database | None], Awaitable[None]]


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[Contract], None]]:
    with throwaway_database("sqlite" if request.param == "memory" else request.param, tmp_path) as url:

        def runner(contract: Contract) -> None:
            async def main() -> None:
                if request.param == "memory":
                    memory = InMemoryLedgerStore()
                    reports = InMemoryUsageReports(memory.rollups)
                    await contract(memory, reports, InMemoryBackendReadings(), None)
                    return
                database = Database(url)
                try:
                    store = SqlLedgerStore(database)
                    await store.start()
                    await contract(store, SqlUsageReports(database), SqlBackendReadings(database), database)
                finally:
                    await database.aclose()

            asyncio.run(main())

        yield runner


def record(index: int) -> UsageRecord:
    """Records over ten days, every few hours, for two users and a broken stream now and then."""
    prompt, completion = 10 + index % 7, 5 + index % 3
    return UsageRecord(
        request_id=f"r{index:05d}",
        created_at=BASE + index * 5 * HOUR / 3 + 17.5,
        user=("alice", "bob")[index % 2],
        tier="free",
        key_id="k",
        model="m",
        endpoint="/v1/chat/completions",
        status=200,
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        charged_tokens=prompt + completion,
        cost=(prompt + completion) / 1000,
        streamed=index % 3 == 0,
        rate_limited=False,
        usage_estimated=False,
        latency_ms=1.0,
        broken=index % 11 == 0,
        backend="http://a:8000",
    )


async def _raw_count(database: Database | None) -> int | None:
    if database is None:
        return None
    async with database.engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(usage_records))).scalar_one())


async def _rollups(database: Database | None) -> list[list[tuple[object, ...]]]:
    if database is None:
        return []
    async with database.engine.connect() as connection:
        return [
            sorted(tuple(row) for row in (await connection.execute(select(t))).all()) for t in ROLLUP_TABLES
        ]


def test_reports_over_pruned_hours_equal_the_answers_before_the_prune(
    run: Callable[[Contract], None],
) -> None:
    """Pruning ten days of raw records, five at a time, past a three-day retention: the ledger's report
    and the portal's totals and breakdowns over whole hours and days are what they were; the rollups
    are untouched; only the raw records of the hours before the horizon are gone; counter readings
    past the retention are pruned too."""

    async def contract(
        store: Store, reports: UsageReports, readings: Readings, database: Database | None
    ) -> None:
        records = [record(index) for index in range(150)]  # ten days and a bit
        await store.write(records)
        await readings.record(
            [BackendReading("http://a:8000", "m", BASE + day * DAY, day, day) for day in range(11)]
        )
        everything = ReportRange(BASE // HOUR, BASE // HOUR + 11 * 24)
        queries = [
            UsageQuery(BASE, BASE + 11 * DAY, ("user", "day")),
            UsageQuery(BASE + 5 * HOUR, BASE + 30 * HOUR, ("model", "hour")),
            UsageQuery(BASE, BASE + 11 * DAY, ()),
        ]
        before = [await store.aggregate(query) for query in queries]
        totals_before = await reports.totals(everything)
        breakdown_before = await reports.breakdown(everything, ("day", "user", "outcome"))
        rollups_before = await _rollups(database)
        clock = FakeClock(BASE + 10 * DAY + 7 * HOUR + 12)
        retention = RawRetention(store, readings, lambda: 3.0 * DAY, batch_size=lambda: 5, clock=clock)
        pruned = await retention.prune_once()
        horizon = BASE + 7 * DAY + 7 * HOUR  # three days back, rounded down to the hour
        if database is not None:
            assert pruned == sum(item.created_at < horizon for item in records)
            assert await _raw_count(database) == sum(item.created_at >= horizon for item in records)
        assert [await store.aggregate(query) for query in queries] == before
        assert await reports.totals(everything) == totals_before
        assert totals_before.broken == sum(item.broken for item in records)
        assert await reports.breakdown(everything, ("day", "user", "outcome")) == breakdown_before
        assert await _rollups(database) == rollups_before
        kept = await readings.series(BASE, BASE + 11 * DAY)
        assert [reading.at for reading in kept[("http://a:8000", "m")]] == [
            BASE + day * DAY for day in (8, 9, 10)
        ]
        assert await retention.prune_once() == 0  # nothing more until time passes

    run(contract)


def test_no_retention_keeps_every_raw_record(run: Callable[[Contract], None]) -> None:
    """``raw_retention: null`` prunes nothing, however old."""

    async def contract(
        store: Store, _reports: UsageReports, readings: Readings, database: Database | None
    ) -> None:
        await store.write([record(index) for index in range(20)])
        retention = RawRetention(store, readings, lambda: None, clock=FakeClock(BASE + 1000 * DAY))
        assert await retention.prune_once() == 0
        assert await _raw_count(database) in (None, 20)

    run(contract)


def test_retention_is_configured_in_the_database_section() -> None:
    """90 days by default; a duration such as 30d, or null for forever."""
    assert DatabaseSettings().raw_retention == 90 * DAY
    configured = DatabaseSettings.model_validate({"raw_retention": "30d", "prune_batch_size": 100})
    assert (configured.raw_retention, configured.prune_batch_size) == (30 * DAY, 100)
    assert DatabaseSettings.model_validate({"raw_retention": None}).raw_retention is None


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_replicas_pruning_at_once_delete_each_record_once(kind: str, tmp_path: Path) -> None:
    """Two gateways' retention tasks pruning the same database at the same time: together they delete
    every expired raw record exactly once, and the reports over the pruned days do not change."""
    with throwaway_database(kind, tmp_path) as url:

        async def main() -> None:
            first, second = Database(url), Database(url)
            try:
                store = SqlLedgerStore(first)
                await store.start()
                records = [record(index) for index in range(150)]
                await store.write(records)
                query = UsageQuery(BASE, BASE + 11 * DAY, ("user", "day"))
                before = await store.aggregate(query)
                clock = FakeClock(BASE + 10 * DAY + 7 * HOUR + 12)
                prunes = [
                    RawRetention(
                        SqlLedgerStore(database),
                        SqlBackendReadings(database),
                        lambda: 3.0 * DAY,
                        batch_size=lambda: 4,
                        clock=clock,
                    ).prune_once()
                    for database in (first, second)
                ]
                pruned = await asyncio.gather(*prunes)
                horizon = BASE + 7 * DAY + 7 * HOUR
                assert sum(pruned) == sum(item.created_at < horizon for item in records)
                assert await _raw_count(first) == sum(item.created_at >= horizon for item in records)
                assert await store.aggregate(query) == before
            finally:
                await first.aclose()
                await second.aclose()

        asyncio.run(main())
