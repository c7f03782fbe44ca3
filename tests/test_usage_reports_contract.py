"""One contract for every ``UsageReports``: over the in-memory rollups, SQLite and PostgreSQL, the portal's
reports (series, totals, top lists, breakdowns, last calls) answer alike, from rollups the ledger writer
keeps as it stores records."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from maas_gateway.database import Database
from maas_gateway.metering.memory_reports import InMemoryUsageReports
from maas_gateway.metering.records import UsageRecord
from maas_gateway.metering.reports import ReportRange, UsageReports, UsageTotals
from maas_gateway.metering.sql_reports import SqlUsageReports
from maas_gateway.metering.sql_store import SqlLedgerStore
from maas_gateway.metering.store import InMemoryLedgerStore, LedgerStore
from tests.support.postgres_server import throwaway_database

Contract = Callable[[LedgerStore, UsageReports], Awaitable[None]]
HOUR = 3600
DAY = 86400
BASE = 1_796_000_000 - 1_796_000_000 % DAY  # a UTC midnight
BASE_HOUR = BASE // HOUR


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[Contract], None]]:
    """Runs a contract coroutine against a fresh ledger and its reports, of the parametrized kind."""
    with throwaway_database("sqlite" if request.param == "memory" else request.param, tmp_path) as url:

        def runner(contract: Contract) -> None:
            async def main() -> None:
                if request.param == "memory":
                    memory = InMemoryLedgerStore()
                    await contract(memory, InMemoryUsageReports(memory.rollups))
                    return
                database = Database(url)
                try:
                    store = SqlLedgerStore(database)
                    await store.start()
                    await contract(store, SqlUsageReports(database))
                finally:
                    await database.aclose()

            asyncio.run(main())

        yield runner


def record(
    request_id: str, at: float, user: str = "alice", model: str | None = "m1", **fields: object
) -> UsageRecord:
    values: dict[str, object] = {
        "request_id": request_id,
        "created_at": at,
        "user": user,
        "tier": "free",
        "key_id": "key_a",
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
        "latency_ms": 2.0,
    }
    values.update(fields)
    return UsageRecord(**values)  # type: ignore[arg-type]  # the test's own field names


def test_a_developer_series_by_day_and_model_shows_only_their_usage(run: Callable[[Contract], None]) -> None:
    """Seven days by day and model: one point per day and model with requests, tokens and cost; another
    user's usage and usage outside the range are not in it; an hourly series over 24 h likewise."""

    async def contract(store: LedgerStore, reports: UsageReports) -> None:
        await store.write(
            [
                record("a", BASE + 10),
                record("b", BASE + 20, model="m2", prompt_tokens=100, cost=1.0),
                record("c", BASE + DAY + 30),
                record("d", BASE + DAY + HOUR + 30),
                record("e", BASE + 40, user="bob"),
                record("f", BASE + 8 * DAY, cost=9.0),  # after the range
            ]
        )
        week = ReportRange(BASE_HOUR, BASE_HOUR + 7 * 24)
        series = await reports.breakdown(week, ("day", "model"), user="alice")
        assert [
            (g.key["day"], g.key["model"], g.totals.requests, g.totals.prompt_tokens) for g in series
        ] == [
            (BASE, "m1", 1, 10),
            (BASE, "m2", 1, 100),
            (BASE + DAY, "m1", 2, 20),
        ]
        assert [g.totals.cost for g in series] == [0.25, 1.0, 0.5]
        day = ReportRange(BASE_HOUR + 24, BASE_HOUR + 48)
        hourly = await reports.breakdown(day, ("hour",), user="alice")
        assert [(g.key["hour"], g.totals.requests) for g in hourly] == [
            (BASE + DAY, 1),
            (BASE + DAY + HOUR, 1),
        ]
        assert await reports.breakdown(week, ("day",), user="nobody") == []

    run(contract)


def test_totals_count_outcomes_errors_and_429s(run: Callable[[Contract], None]) -> None:
    """Totals over all users, or one, count answered requests, the caller's errors, failures and 429s
    apart, with tokens, cost, streamed requests and the mean latency."""

    async def contract(store: LedgerStore, reports: UsageReports) -> None:
        await store.write(
            [
                record("ok1", BASE + 1, streamed=True, latency_ms=4.0),
                record("ok2", BASE + 2, user="bob", latency_ms=8.0),
                record("bad", BASE + 3, status=400, prompt_tokens=0, completion_tokens=0, total_tokens=0),
                record("lost", BASE + 4, user="bob", status=502, failed=True, cost=0.0),
                record("429", BASE + 5, status=429, rate_limited=True, model=None),
            ]
        )
        everything = await reports.totals(ReportRange(BASE_HOUR, BASE_HOUR + 24))
        assert (everything.requests, everything.ok, everything.client_errors) == (5, 2, 1)
        assert (everything.failed, everything.rate_limited, everything.errors) == (1, 1, 2)
        assert (everything.prompt_tokens, everything.streamed) == (40, 1)
        assert everything.cost == pytest.approx(1.0)
        assert everything.mean_latency_ms == pytest.approx((4 + 8 + 2 + 2 + 2) / 5)
        bob = await reports.totals(ReportRange(BASE_HOUR, BASE_HOUR + 24), user="bob")
        assert (bob.requests, bob.ok, bob.failed) == (2, 1, 1)
        assert await reports.totals(ReportRange(BASE_HOUR + 1, BASE_HOUR + 24)) == UsageTotals()

    run(contract)


def test_broken_off_streams_are_an_outcome_of_their_own(run: Callable[[Contract], None]) -> None:
    """A stream the backend broke off counts as ``broken`` (not ok, not failed) in totals and in the
    breakdown by outcome, with the tokens it delivered."""

    async def contract(store: LedgerStore, reports: UsageReports) -> None:
        await store.write(
            [
                record("ok1", BASE + 1, streamed=True),
                record("cut", BASE + 2, streamed=True, broken=True, completion_tokens=3, total_tokens=13),
            ]
        )
        period = ReportRange(BASE_HOUR, BASE_HOUR + 24)
        totals = await reports.totals(period)
        assert (totals.requests, totals.ok, totals.broken, totals.failed) == (2, 1, 1, 0)
        by_outcome = await reports.breakdown(period, ("outcome",))
        assert [(g.key["outcome"], g.totals.completion_tokens) for g in by_outcome] == [
            ("broken", 3),
            ("ok", 5),
        ]

    run(contract)


def test_top_users_and_models_largest_first(run: Callable[[Contract], None]) -> None:
    """Top lists order by the chosen measure, largest first, ties by name, cut at the limit."""

    async def contract(store: LedgerStore, reports: UsageReports) -> None:
        await store.write(
            [
                record("1", BASE + 1, user="carol", cost=3.0, model="m2"),
                record("2", BASE + 2, user="alice", cost=1.0),
                record("3", BASE + 3, user="alice", cost=1.0),
                record("4", BASE + 4, user="bob", cost=2.0),
                record("5", BASE + 5, user="dave", cost=0.5),
            ]
        )
        period = ReportRange(BASE_HOUR, BASE_HOUR + 24)
        by_cost = await reports.top(period, "user", limit=3)
        assert [(g.key["user"], g.totals.cost) for g in by_cost] == [
            ("carol", 3.0),
            ("alice", 2.0),
            ("bob", 2.0),
        ]
        by_requests = await reports.top(period, "user", by="requests", limit=2)
        assert [(g.key["user"], g.totals.requests) for g in by_requests] == [("alice", 2), ("bob", 1)]
        models = await reports.top(period, "model", by="total_tokens")
        assert [(g.key["model"], g.totals.total_tokens) for g in models] == [("m1", 60), ("m2", 15)]

    run(contract)


def test_admin_breakdown_orders_by_code_point_and_pages(run: Callable[[Contract], None]) -> None:
    """Grouped by user, tier, model and day: rows ordered by each dimension (code points, so 'Zed' before
    'alice' on every engine; a missing model last), and limit/offset page through the same order."""

    async def contract(store: LedgerStore, reports: UsageReports) -> None:
        await store.write(
            [
                record("1", BASE + 1, user="alice", model=None, status=404),
                record("2", BASE + 2, user="alice"),
                record("3", BASE + DAY + 3, user="alice", tier="premium"),
                record("4", BASE + 4, user="Zed"),
                record("5", BASE + 5, user="<b>bob</b>"),
            ]
        )
        period = ReportRange(BASE_HOUR, BASE_HOUR + 30 * 24)
        rows = await reports.breakdown(period, ("user", "tier", "model", "day"))
        keys = [tuple(g.key.values()) for g in rows]
        assert keys == [
            ("<b>bob</b>", "free", "m1", BASE),
            ("Zed", "free", "m1", BASE),
            ("alice", "free", "m1", BASE),
            ("alice", "free", None, BASE),
            ("alice", "premium", "m1", BASE + DAY),
        ]
        page = await reports.breakdown(period, ("user", "tier", "model", "day"), limit=2, offset=2)
        assert [tuple(g.key.values()) for g in page] == keys[2:4]
        by_outcome = await reports.breakdown(period, ("outcome",), user="alice")
        assert [(g.key["outcome"], g.totals.requests) for g in by_outcome] == [("client_error", 1), ("ok", 2)]

    run(contract)


def test_keyset_paging_returns_every_group_exactly_once(run: Callable[[Contract], None]) -> None:
    """Paging by the key of each page's last group (a breakdown led by the user, read user by user in
    SQL, and one that is not) returns every group once, in order, whatever the page size; the same key
    with an offset skips within the rest; a key that does not fit the dimensions is refused."""

    async def contract(store: LedgerStore, reports: UsageReports) -> None:
        users = ["Zed", "alice", "bob", "<b>bob</b>", "carol", "dave", "erin"]
        models = ["m1", "m2", None]
        await store.write(
            [
                record(f"{u}{m}{d}", BASE + d * DAY + 60, user=user, model=model, tier=f"t{u % 2}")
                for u, user in enumerate(users)
                for m, model in enumerate(models[: 1 + u % 3])
                for d in range(u % 4 + 1)
            ]
        )
        period = ReportRange(BASE_HOUR, BASE_HOUR + 30 * 24)
        for group_by in (("user", "model", "day"), ("model", "day"), ("tier", "user")):
            every = [tuple(g.key.values()) for g in await reports.breakdown(period, group_by)]
            assert len(every) == len(set(every)) >= 7
            for size in (1, 2, 5, 100):
                seen: list[tuple[str | int | None, ...]] = []
                after = None
                while page := await reports.breakdown(period, group_by, limit=size, after=after):
                    seen += [tuple(g.key.values()) for g in page]
                    after = seen[-1]
                assert seen == every, (group_by, size)
            skipped = await reports.breakdown(period, group_by, limit=2, offset=3, after=every[1])
            assert [tuple(g.key.values()) for g in skipped] == every[5:7]
        with pytest.raises(ValueError, match="one value for each dimension"):
            await reports.breakdown(period, ("user", "model"), limit=10, after=["alice"])

    run(contract)


def test_recent_calls_are_the_users_own_newest_first(run: Callable[[Contract], None]) -> None:
    """A user's last calls: raw records, newest first, cut at the limit, nobody else's."""

    async def contract(store: LedgerStore, reports: UsageReports) -> None:
        await store.write(
            [record(f"a{i}", BASE + i) for i in (3, 1, 4, 2)] + [record("b", BASE + 9, user="bob")]
        )
        calls = await reports.recent_calls("alice", limit=3)
        assert [call.request_id for call in calls] == ["a4", "a3", "a2"]
        assert calls[0] == record("a4", BASE + 4)
        assert await reports.recent_calls("nobody") == []

    run(contract)


def test_a_replayed_batch_changes_no_report(run: Callable[[Contract], None]) -> None:
    """The same records written again (a retried batch, a replayed spool) leave every report as it was."""

    async def contract(store: LedgerStore, reports: UsageReports) -> None:
        batch = [record(f"r{i}", BASE + 60 * i, user=f"u{i % 3}") for i in range(30)]
        await store.write(batch)
        period = ReportRange(BASE_HOUR, BASE_HOUR + 24)
        before = await reports.breakdown(period, ("user", "hour"))
        await store.write(batch[5:] + batch[:5])
        await store.write(batch[::2])
        assert await reports.breakdown(period, ("user", "hour")) == before
        assert (await reports.totals(period)).requests == 30

    run(contract)


def test_an_unknown_dimension_is_refused_with_a_sentence(run: Callable[[Contract], None]) -> None:
    """Grouping by a column that is not a dimension raises a clear error, never reaches SQL."""

    async def contract(store: LedgerStore, reports: UsageReports) -> None:
        with pytest.raises(ValueError, match="cannot be grouped by 'cost; DROP TABLE'"):
            await reports.breakdown(ReportRange(0, 1), ("cost; DROP TABLE",))  # type: ignore[arg-type]  # the attack

    run(contract)


def test_report_ranges_are_whole_hours() -> None:
    """The last 24 h / 7 d / 30 d include the current hour; arbitrary times round out to whole hours."""
    now = BASE + 5 * HOUR + 17
    assert ReportRange.last(DAY, now) == ReportRange(BASE_HOUR + 6 - 24, BASE_HOUR + 6)
    assert ReportRange.last(30 * DAY, now).last_hour - ReportRange.last(30 * DAY, now).first_hour == 720
    assert ReportRange.between(BASE + 10, BASE + HOUR + 1) == ReportRange(BASE_HOUR, BASE_HOUR + 2)
    assert ReportRange.between(BASE, BASE).until == BASE
    with pytest.raises(ValueError, match="must not end before it starts"):
        ReportRange(5, 4)


def test_csv_export_holds_every_measure_and_defuses_formulas() -> None:
    """The CSV of a breakdown has a header of dimensions and measures, one line per group, a missing
    model as an empty cell, and a user name a spreadsheet would run as a formula quoted as text."""
    from maas_gateway.metering import UsageGroup, usage_csv

    rows = [
        UsageGroup({"user": '=HYPERLINK("http://evil")', "model": None}, UsageTotals(requests=2, cost=0.5)),
        UsageGroup({"user": "alice", "model": "m1"}, UsageTotals(requests=1, ok=1, latency_ms_sum=3.0)),
    ]
    lines = list(csv.reader(io.StringIO(usage_csv(rows, ("user", "model")))))
    assert lines[0][:4] == ["user", "model", "requests", "ok"]
    assert lines[0][-2:] == ["errors", "mean_latency_ms"]
    assert lines[1][:3] == ['\'=HYPERLINK("http://evil")', "", "2"]
    assert dict(zip(lines[0], lines[2], strict=True))["mean_latency_ms"] == "3.0"
    assert len(lines) == 3
