"""Reports read from the rollups equal a recount of the raw records, for any records, grouping and range
(hour-aligned or not), on SQLite and PostgreSQL; the portal's reports equal a recount and the in-memory
reports."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from maas_gateway.database import Database
from maas_gateway.metering import GROUPS, UsageQuery, UsageRecord
from maas_gateway.metering.memory_reports import InMemoryUsageReports
from maas_gateway.metering.outcomes import outcome_of
from maas_gateway.metering.reports import DIMENSIONS, Dimension, ReportRange
from maas_gateway.metering.sql_reports import SqlUsageReports
from maas_gateway.metering.sql_store import SqlLedgerStore
from maas_gateway.metering.store import InMemoryLedgerStore
from maas_gateway.metering.tables import ROLLUP_TABLES, usage_records
from tests.support.postgres_server import throwaway_database

HOUR = 3600
BASE = 1_796_000_000 - 1_796_000_000 % 86400
SPAN = 3 * 86400  # records fall in three days


class Ledger:
    """One database for every example of a test, emptied before each; one event loop for its engine."""

    def __init__(self, url: str) -> None:
        self.runner = asyncio.Runner()
        self.database = Database(url)
        self.store = SqlLedgerStore(self.database)
        self.reports = SqlUsageReports(self.database)
        self.runner.run(self.store.start())

    def reset(self, records: list[UsageRecord]) -> None:
        async def main() -> None:
            async with self.database.engine.begin() as connection:
                for table in (usage_records, *ROLLUP_TABLES):
                    await connection.execute(delete(table))
            for start in range(0, len(records), 37):  # several batches, as the writer sends them
                await self.store.write(records[start : start + 37])

        self.runner.run(main())

    def close(self) -> None:
        self.runner.run(self.database.aclose())
        self.runner.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    """A ledger database of the parametrized kind, shared by a test's examples."""
    with throwaway_database(request.param, tmp_path_factory.mktemp("recount")) as url:
        opened = Ledger(url)
        yield opened
        opened.close()


@st.composite
def records(draw: st.DrawFn) -> list[UsageRecord]:
    count = draw(st.integers(0, 60))
    found = []
    for index in range(count):
        prompt, completion = draw(st.integers(0, 500)), draw(st.integers(0, 500))
        outcome = draw(st.sampled_from(["ok", "client_error", "failed", "rate_limited", "broken"]))
        status = {"ok": 200, "client_error": 400, "failed": 502, "rate_limited": 429, "broken": 200}[outcome]
        found.append(
            UsageRecord(
                request_id=f"r{index}",
                created_at=BASE + draw(st.floats(0, SPAN, allow_nan=False, exclude_max=True)),
                user=draw(st.sampled_from(["alice", "bob", "Zoë"])),
                tier=draw(st.sampled_from(["free", "premium"])),
                key_id=draw(st.sampled_from(["k1", "k2"])),
                model=draw(st.sampled_from([None, "m1", "m2"])),
                endpoint=draw(st.sampled_from(["/v1/chat/completions", "/v1/embeddings"])),
                status=status,
                prompt_tokens=prompt,
                completion_tokens=completion,
                total_tokens=prompt + completion,
                charged_tokens=draw(st.integers(0, 2000)),
                cost=draw(st.floats(0, 1, allow_nan=False)),
                streamed=draw(st.booleans()),
                rate_limited=outcome == "rate_limited",
                usage_estimated=False,
                latency_ms=draw(st.floats(0, 1000, allow_nan=False)),
                failed=outcome == "failed",
                broken=outcome == "broken",
                backend=draw(st.sampled_from([None, "http://a:8000", "http://b:8000"])),
                team=draw(st.sampled_from(["", "research", "ops"])),
            )
        )
    duplicates = draw(st.lists(st.sampled_from(found), max_size=10)) if found else []
    return found + duplicates  # a record written twice must count once


instants = st.one_of(
    st.integers(-2, SPAN // HOUR + 2).map(lambda hour: float(BASE + hour * HOUR)),  # hour-aligned
    st.floats(-HOUR, SPAN + HOUR, allow_nan=False).map(lambda offset: BASE + offset),
)


def recount(found: list[UsageRecord], query: UsageQuery) -> dict[tuple[Any, ...], list[float]]:
    """The reference: every distinct record in the range, summed by the query's groups."""
    totals: dict[tuple[Any, ...], list[float]] = {}
    for item in {item.request_id: item for item in reversed(found)}.values():
        if not query.since <= item.created_at < query.until or query.user not in (None, item.user):
            continue
        values = {
            "user": item.user,
            "tier": item.tier,
            "model": item.model,
            "endpoint": item.endpoint,
            "day": item.hour // 24 * 86400,
            "hour": item.hour * HOUR,
            "team": item.team or None,
        }
        sums = totals.setdefault(tuple(values[group] for group in query.group_by), [0] * 9)
        for index, value in enumerate(
            [
                1,
                item.rate_limited,
                item.failed,
                item.broken,
                item.prompt_tokens,
                item.completion_tokens,
                item.total_tokens,
                item.charged_tokens,
                item.cost,
            ]
        ):
            sums[index] += value
    return totals


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    found=records(),
    groups=st.lists(st.sampled_from(GROUPS), unique=True, max_size=3),
    ends=st.tuples(instants, instants).filter(lambda ends: ends[0] < ends[1]),
    user=st.sampled_from([None, "alice", "Zoë"]),
)
def test_reports_from_rollups_equal_a_recount(
    ledger: Ledger, found: list[UsageRecord], groups: list[str], ends: tuple[float, float], user: str | None
) -> None:
    """``aggregate`` (rollups for whole hours, raw records for the ragged ends) equals a recount of the
    distinct raw records: the same groups and counts, costs equal to rounding."""
    ledger.reset(found)
    query = UsageQuery(ends[0], ends[1], tuple(groups), user)  # type: ignore[arg-type]  # drawn from GROUPS
    rows = ledger.runner.run(ledger.store.aggregate(query))
    expected = recount(found, query)
    if not groups and not expected:
        expected = {(): [0] * 9}  # a report without groups has its one row of zeros, as it always had
    got = {tuple(row.groups.values()): row for row in rows}
    assert set(got) == set(expected)
    for key, sums in expected.items():
        row = got[key]
        counts = (row.requests, row.rate_limited, row.failed, row.broken, row.prompt_tokens)
        assert counts == tuple(sums[:5])
        assert (row.completion_tokens, row.total_tokens, row.charged_tokens) == tuple(sums[5:8])
        assert math.isclose(row.cost, sums[8], rel_tol=1e-9, abs_tol=1e-9)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(found=records(), hours=st.tuples(st.integers(-2, 74), st.integers(0, 80)))
def test_portal_totals_equal_a_recount(
    ledger: Ledger, found: list[UsageRecord], hours: tuple[int, int]
) -> None:
    """The portal's totals over a range of whole hours equal a recount per outcome, streamed and latency."""
    ledger.reset(found)
    period = ReportRange(BASE // HOUR + hours[0], BASE // HOUR + hours[0] + hours[1])
    totals = ledger.runner.run(ledger.reports.totals(period))
    distinct = [
        item for item in {item.request_id: item for item in reversed(found)}.values()
        if period.since <= item.created_at < period.until
    ]  # fmt: skip
    outcomes = [outcome_of(item) for item in distinct]
    assert (totals.requests, totals.ok, totals.client_errors) == (
        len(distinct), outcomes.count("ok"), outcomes.count("client_error"),
    )  # fmt: skip
    assert (totals.failed, totals.rate_limited) == (outcomes.count("failed"), outcomes.count("rate_limited"))
    assert totals.streamed == sum(item.streamed for item in distinct)
    assert totals.charged_tokens == sum(item.charged_tokens for item in distinct)
    assert math.isclose(totals.latency_ms_sum, sum(item.latency_ms for item in distinct), abs_tol=1e-6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    found=records(),
    groups=st.lists(st.sampled_from(DIMENSIONS), unique=True, max_size=3),
    hours=st.tuples(st.integers(-30, 74), st.integers(0, 80)),
    user=st.sampled_from([None, "bob"]),
    page=st.one_of(st.none(), st.tuples(st.integers(1, 6), st.integers(0, 8))),
)
def test_portal_breakdowns_equal_the_in_memory_ones(
    ledger: Ledger,
    found: list[UsageRecord],
    groups: list[Dimension],
    hours: tuple[int, int],
    user: str | None,
    page: tuple[int, int] | None,
) -> None:
    """Any grouping over any range of hours (whole days read from the daily rollups, the hours around
    them from the hourly ones), paged or not, gives the groups, in the order, that the in-memory
    reports give."""
    if page is not None and "user" not in groups:
        groups = ["user", *groups]  # also the page read a few users at a time
    limit, offset = page if page is not None else (None, 0)
    ledger.reset(found)
    memory = InMemoryLedgerStore()
    asyncio.run(memory.write(found))
    period = ReportRange(BASE // HOUR + hours[0], BASE // HOUR + hours[0] + hours[1])
    got = ledger.runner.run(ledger.reports.breakdown(period, groups, user=user, limit=limit, offset=offset))
    memory_reports = InMemoryUsageReports(memory.rollups)
    expected = asyncio.run(memory_reports.breakdown(period, groups, user=user, limit=limit, offset=offset))
    assert [group.key for group in got] == [group.key for group in expected]
    for mine, reference in zip(got, expected, strict=True):
        assert dataclasses.replace(mine.totals, cost=0.0, latency_ms_sum=0.0) == dataclasses.replace(
            reference.totals, cost=0.0, latency_ms_sum=0.0
        )
        assert math.isclose(mine.totals.cost, reference.totals.cost, rel_tol=1e-9, abs_tol=1e-9)
        assert math.isclose(mine.totals.latency_ms_sum, reference.totals.latency_ms_sum, abs_tol=1e-6)
