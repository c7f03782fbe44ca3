"""One contract for every ``BackendReadings``: in memory, SQLite and PostgreSQL keep and prune the
backends' counter readings alike; and the pure parts of reconciliation (the counters' growth across a
restart, the vLLM text parser, the ledger's totals by backend, the drift)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from maas_gateway.balancing.vllm_metrics import MetricsFormatError
from maas_gateway.database import Database
from maas_gateway.metering.readings import (
    BackendReading,
    BackendReadings,
    Growth,
    InMemoryBackendReadings,
    growth_of,
)
from maas_gateway.metering.reconcile import drift_ratio, reconcile
from maas_gateway.metering.records import UsageRecord
from maas_gateway.metering.sql_readings import SqlBackendReadings
from maas_gateway.metering.sql_store import SqlLedgerStore
from maas_gateway.metering.store import InMemoryLedgerStore
from maas_gateway.metering.token_counters import TokenCounters, parse_token_counters
from tests.support.postgres_server import throwaway_database

Contract = Callable[[BackendReadings, InMemoryLedgerStore | SqlLedgerStore], Awaitable[None]]
BASE = 1_796_000_000.0
A, B = "http://a:8000", "http://b:8000"


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[Contract], None]]:
    """Runs a contract against fresh readings and a fresh ledger of the parametrized kind."""
    with throwaway_database("sqlite" if request.param == "memory" else request.param, tmp_path) as url:

        def runner(contract: Contract) -> None:
            async def main() -> None:
                if request.param == "memory":
                    await contract(InMemoryBackendReadings(), InMemoryLedgerStore())
                    return
                database = Database(url)
                try:
                    ledger = SqlLedgerStore(database)
                    await ledger.start()
                    await contract(SqlBackendReadings(database), ledger)
                finally:
                    await database.aclose()

            asyncio.run(main())

        yield runner


def reading(
    at: float, prompt: float, generation: float, backend: str = A, model: str = "m"
) -> BackendReading:
    return BackendReading(backend, model, BASE + at, prompt, generation)


def record(request_id: str, at: float, prompt: int, completion: int, **fields: object) -> UsageRecord:
    values: dict[str, object] = {
        "request_id": request_id,
        "created_at": BASE + at,
        "user": "alice",
        "tier": "free",
        "key_id": "k",
        "model": "public-m",
        "endpoint": "/v1/chat/completions",
        "status": 200,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "charged_tokens": prompt + completion,
        "cost": 0.0,
        "streamed": False,
        "rate_limited": False,
        "usage_estimated": False,
        "latency_ms": 1.0,
        "backend": A,
    }
    values.update(fields)
    return UsageRecord(**values)  # type: ignore[arg-type]  # the test's own field names


def test_series_start_at_the_last_reading_before_the_period(run: Callable[[Contract], None]) -> None:
    """A period's series holds the last reading before it, its own readings in time order, and nothing
    after; a reading stored twice is kept once; each backend and model is a series of its own."""

    async def contract(readings: BackendReadings, _ledger: object) -> None:
        await readings.record([reading(30, 3, 3), reading(0, 0, 0), reading(10, 1, 1), reading(99, 9, 9)])
        await readings.record([reading(10, 1, 1), reading(20, 5, 5, backend=B)])
        found = await readings.series(BASE + 15, BASE + 30)
        assert [r.at - BASE for r in found[(A, "m")]] == [10, 30]
        assert [r.at - BASE for r in found[(B, "m")]] == [20]
        assert await readings.series(BASE - 100, BASE - 50) == {}

    run(contract)


def test_pruning_removes_the_oldest_readings_in_batches(run: Callable[[Contract], None]) -> None:
    """Pruning deletes at most a batch of the readings older than the bound, oldest first."""

    async def contract(readings: BackendReadings, _ledger: object) -> None:
        await readings.record([reading(float(at), at, at) for at in range(10)])
        assert await readings.prune(BASE + 5, limit=3) == 3
        assert await readings.prune(BASE + 5, limit=3) == 2
        assert await readings.prune(BASE + 5, limit=3) == 0
        [series] = (await readings.series(BASE, BASE + 100)).values()
        assert [r.at - BASE for r in series] == [5, 6, 7, 8, 9]

    run(contract)


def test_reconciliation_compares_the_period_between_readings(run: Callable[[Contract], None]) -> None:
    """The ledger's records between the bounding readings are compared with the counters' growth over
    a restart; a ledger model is counted under the backend's sole model name; traffic on a backend
    without readings is reported with nothing to compare it to (a warning)."""

    async def contract(readings: BackendReadings, ledger: InMemoryLedgerStore | SqlLedgerStore) -> None:
        await readings.record([reading(0, 100, 50), reading(60, 130, 70), reading(120, 10, 5)])
        await ledger.write(
            [
                record("before", -30, 1000, 1000),  # before the first reading: not in the period
                record("one", 10, 30, 20),
                record("two", 70, 10, 5, model="other-alias"),  # after the restart
                record("elsewhere", 20, 7, 7, backend=B),
                record("gone", 20, 7, 7, backend=None),  # never reached a backend
            ]
        )
        rows = await reconcile(ledger, readings, BASE, BASE + 120, {})
        by_backend = {row.backend: row for row in rows}
        row = by_backend[A]
        assert (row.since, row.until, row.model) == (BASE, BASE + 120, "m")
        assert (row.backend_prompt_tokens, row.backend_generation_tokens, row.resets) == (40, 25, 1)
        assert (row.ledger_prompt_tokens, row.ledger_completion_tokens, row.ledger_requests) == (40, 25, 2)
        assert row.drift_ratio == 0
        assert not row.warning
        other = by_backend[B]
        assert (other.drift_ratio, other.backend_prompt_tokens, other.warning) == (None, None, True)

    run(contract)


def test_growth_counts_from_zero_after_a_reset() -> None:
    """A counter that drops was reset by a restart: the later value is what was counted since."""
    chain = [reading(0, 100, 10), reading(1, 150, 20), reading(2, 30, 4), reading(3, 40, 6)]
    assert growth_of(chain) == Growth(90, 16, 1)  # 50 before the restart, 30 counted since, then 10
    assert growth_of(chain[:1]) == Growth(0, 0, 0)


def test_drift_is_bounded_and_symmetric() -> None:
    """0 when both sides agree or both are empty, 1 when one side counted nothing."""
    assert drift_ratio(0, 0) == 0
    assert drift_ratio(100, 100) == 0
    assert drift_ratio(100, 0) == drift_ratio(0, 100) == 1
    assert drift_ratio(1000, 985) == pytest.approx(0.015)


def test_the_vllm_counters_are_read_per_model_and_summed_over_engines() -> None:
    """Both counters by model_name, engines added up; other metrics ignored; a model with one counter
    only is left out; a negative counter is refused with a sentence."""
    text = "\n".join(
        [
            "# TYPE vllm:prompt_tokens_total counter",
            'vllm:prompt_tokens_total{engine="0",model_name="m"} 10.0',
            'vllm:prompt_tokens_total{engine="1",model_name="m"} 5.0',
            'vllm:generation_tokens_total{engine="0",model_name="m"} 7.0',
            'vllm:prompt_tokens_total{model_name="half"} 3.0',
            'vllm:num_requests_running{model_name="m"} 2.0',
            "garbage that is not read",
        ]
    )
    assert parse_token_counters(text) == {"m": TokenCounters(15, 7)}
    with pytest.raises(MetricsFormatError, match="not a count"):
        parse_token_counters('vllm:prompt_tokens_total{model_name="m"} -1\nvllm:generation_tokens_total 1')
