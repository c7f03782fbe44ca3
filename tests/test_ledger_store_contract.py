"""One contract for every ``LedgerStore``: in memory, SQLite and PostgreSQL report the same.

Writes are idempotent by request id, reports sum the same groups over the same hour-aligned ranges, filter
by user, and list their rows in the same order (missing values last).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from maas_gateway.database import Database
from maas_gateway.metering.records import UsageRecord
from maas_gateway.metering.sql_store import SqlLedgerStore
from maas_gateway.metering.store import InMemoryLedgerStore, LedgerStore, UsageQuery, UsageRow
from tests.support.postgres_server import throwaway_database

Contract = Callable[[LedgerStore], Awaitable[None]]
HOUR = 3600.0
BASE = 1_796_000_000 - 1_796_000_000 % 86400  # a UTC midnight


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[Contract], None]]:
    """Runs a contract coroutine against a fresh store of the parametrized kind."""
    with throwaway_database("sqlite" if request.param == "memory" else request.param, tmp_path) as url:

        def runner(contract: Contract) -> None:
            async def main() -> None:
                if request.param == "memory":
                    await contract(InMemoryLedgerStore())
                    return
                database = Database(url)
                try:
                    store = SqlLedgerStore(database)
                    await store.start()
                    await contract(store)
                finally:
                    await database.aclose()

            asyncio.run(main())

        yield runner


def _record(
    request_id: str, at: float, user: str = "alice", model: str | None = "m1", **fields: object
) -> UsageRecord:
    values: dict[str, object] = {
        "request_id": request_id,
        "created_at": at,
        "user": user,
        "tier": "free",
        "key_id": "key_x",
        "model": model,
        "endpoint": "/v1/chat/completions",
        "status": 200,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "charged_tokens": 15,
        "cost": 0.25,
        "streamed": False,
        "rate_limited": False,
        "usage_estimated": False,
        "latency_ms": 1.0,
    }
    values.update(fields)
    return UsageRecord(**values)  # type: ignore[arg-type]  # the test's own field names


def _rows(report: list[UsageRow]) -> list[dict[str, object]]:
    return [row.as_dict() for row in report]


def test_a_replayed_record_is_counted_once(run: Callable[[Contract], None]) -> None:
    """Writing the same records again (a retried batch, a replayed spool) changes no total."""

    async def contract(store: LedgerStore) -> None:
        records = [_record(f"r{i}", BASE + 60 * i) for i in range(5)]
        await store.write(records)
        await store.write(records[2:])
        rows = await store.aggregate(UsageQuery(BASE, BASE + 2 * HOUR, ("user",)))
        assert _rows(rows) == [
            {
                "user": "alice",
                "requests": 5,
                "rate_limited": 0,
                "failed": 0,
                "broken": 0,
                "prompt_tokens": 50,
                "completion_tokens": 25,
                "total_tokens": 75,
                "charged_tokens": 75,
                "cost": 1.25,
            }
        ]

    run(contract)


def test_reports_group_filter_and_order_alike(run: Callable[[Contract], None]) -> None:
    """Groups by user, model, day and hour; a user filter; hour-aligned ranges; missing models last."""

    async def contract(store: LedgerStore) -> None:
        await store.write(
            [
                _record("a", BASE + 10, "bob", "m2"),
                _record("b", BASE + HOUR + 10, "alice", "m1", rate_limited=True),
                _record("c", BASE + HOUR + 20, "alice", None, status=401),
                _record("d", BASE + 26 * HOUR, "alice", "m1"),
            ]
        )
        rows = await store.aggregate(UsageQuery(BASE, BASE + 2 * HOUR, ("user", "model")))
        assert [(r.groups["user"], r.groups["model"], r.requests) for r in rows] == [
            ("alice", "m1", 1),
            ("alice", None, 1),
            ("bob", "m2", 1),
        ]
        daily = await store.aggregate(UsageQuery(BASE, BASE + 48 * HOUR, ("day",), user="alice"))
        assert [(r.groups["day"], r.requests, r.rate_limited) for r in daily] == [
            (BASE, 2, 1),
            (BASE + 86400, 1, 0),
        ]
        hourly = await store.aggregate(UsageQuery(BASE, BASE + 2 * HOUR, ("hour",)))
        assert [(r.groups["hour"], r.requests) for r in hourly] == [(BASE, 1), (BASE + HOUR, 2)]
        assert await store.aggregate(UsageQuery(BASE + 3 * HOUR, BASE + 4 * HOUR, ("user",))) == []

    run(contract)


def test_failed_requests_are_counted_apart(run: Callable[[Contract], None]) -> None:
    """A request that failed at the gateway or a backend is a request, and counted as failed."""

    async def contract(store: LedgerStore) -> None:
        await store.write(
            [
                _record("ok", BASE + 10),
                _record("lost", BASE + 20, status=502, prompt_tokens=0, completion_tokens=0, failed=True),
            ]
        )
        [row] = await store.aggregate(UsageQuery(BASE, BASE + HOUR, ("user",)))
        assert (row.requests, row.failed, row.rate_limited, row.prompt_tokens) == (2, 1, 0, 10)

    run(contract)


def test_broken_off_streams_are_counted_apart_and_charged(run: Callable[[Contract], None]) -> None:
    """A stream the backend broke off is a request counted as broken (not failed), with the tokens it
    delivered; reads from the raw records (a ragged hour) and from the rollups agree."""

    async def contract(store: LedgerStore) -> None:
        await store.write(
            [
                _record("ok", BASE + 10, backend="http://a:8000"),
                _record(
                    "cut", BASE + 20, streamed=True, completion_tokens=3, broken=True, backend="http://a"
                ),
                _record("cut-late", BASE + HOUR + 20, streamed=True, broken=True),
            ]
        )
        for since, until in ((BASE, BASE + 2 * HOUR), (BASE + 5, BASE + HOUR + 30)):
            [row] = await store.aggregate(UsageQuery(since, until, ("user",)))
            assert (row.requests, row.failed, row.broken, row.completion_tokens) == (3, 0, 2, 13)

    run(contract)


def test_recent_records_are_a_users_newest_first_within_the_bound(run: Callable[[Contract], None]) -> None:
    """``recent`` returns one user's records from ``since`` on, newest first, at most ``limit``; other
    users' records and older ones never appear, and the records come back whole."""

    async def contract(store: LedgerStore) -> None:
        await store.write(
            [
                _record("old", BASE - 2 * HOUR),
                _record("r1", BASE + 10),
                _record("r2", BASE + 30, model=None, status=429, rate_limited=True),
                _record("r3", BASE + 20),
                _record("bob", BASE + 40, user="bob"),
            ]
        )
        newest = await store.recent("alice", since=BASE - HOUR, limit=2)
        assert [record.request_id for record in newest] == ["r2", "r3"]
        assert newest[0] == _record("r2", BASE + 30, model=None, status=429, rate_limited=True)
        everything = await store.recent("alice", since=BASE - HOUR, limit=10)
        assert [record.request_id for record in everything] == ["r2", "r3", "r1"]
        assert await store.recent("carol", since=0.0, limit=10) == []

    run(contract)
