"""Which thresholds a budget crossed (pure policy), and what the limiter's hook reports after counting."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from maas_gateway.alerts.thresholds import (
    DEFAULT_THRESHOLDS,
    ThresholdOverride,
    ThresholdPolicy,
    crossed_thresholds,
    next_threshold_usage,
)
from maas_gateway.application.policies import rule_book
from maas_gateway.config import TierConfig
from maas_gateway.limits import CounterReading, InMemoryLimitStorage, Limiter, TokenCharge
from tests.support.clock import FakeClock


def test_crossing_is_reaching_a_threshold_not_reached_before() -> None:
    """80 % of 1,000 is reached at exactly 800; a jump over several thresholds reports each, in order;
    staying put or going down reports none."""
    assert crossed_thresholds(799, 800, 1000, DEFAULT_THRESHOLDS) == [80]
    assert crossed_thresholds(800, 801, 1000, DEFAULT_THRESHOLDS) == []
    assert crossed_thresholds(0, 1000, 1000, DEFAULT_THRESHOLDS) == [50, 80, 90, 100]
    assert crossed_thresholds(0, 5000, 1000, (100, 50, 50)) == [50, 100]
    assert crossed_thresholds(900, 900, 1000, DEFAULT_THRESHOLDS) == []
    assert crossed_thresholds(950, 100, 1000, DEFAULT_THRESHOLDS) == []
    assert crossed_thresholds(0, 3, 3, DEFAULT_THRESHOLDS) == [50, 80, 90, 100]
    assert crossed_thresholds(1, 2, 3, DEFAULT_THRESHOLDS) == [50]  # 2/3 = 66 %


@given(
    limit=st.integers(1, 10_000),
    steps=st.lists(st.integers(0, 3_000), max_size=40),
    thresholds=st.lists(st.integers(1, 200), max_size=6, unique=True),
)
def test_increments_report_each_reached_threshold_exactly_once(
    limit: int, steps: list[int], thresholds: list[int]
) -> None:
    """Charges adding up, one after another: every threshold the total reaches is reported by exactly one
    charge, and none that it does not reach."""
    used, reported = 0, []
    for step in steps:
        reported += crossed_thresholds(used, used + step, limit, thresholds)
        used += step
    assert sorted(reported) == sorted(t for t in thresholds if used * 100 >= t * limit)


@given(
    limit=st.integers(1, 5_000),
    used=st.integers(0, 6_000),
    thresholds=st.lists(st.integers(1, 120), max_size=6, unique=True),
)
def test_the_next_threshold_usage_is_the_least_usage_that_crosses_one(
    limit: int, used: int, thresholds: list[int]
) -> None:
    """Below the usage it names nothing new is crossed, at it something is (the notifier's fast path)."""
    upcoming = next_threshold_usage(used, limit, thresholds)
    if upcoming == float("inf"):
        assert crossed_thresholds(used, 10**9, limit, thresholds) == []
        return
    assert isinstance(upcoming, int)
    assert upcoming > used
    assert crossed_thresholds(used, upcoming - 1, limit, thresholds) == []
    assert crossed_thresholds(used, upcoming, limit, thresholds) != []


def test_the_first_matching_override_replaces_the_defaults() -> None:
    """An override names a tier, and optionally a unit and a window; the first that matches wins."""
    policy = ThresholdPolicy(
        DEFAULT_THRESHOLDS,
        (
            ThresholdOverride("free", (100,), unit="requests"),
            ThresholdOverride("free", (), window="1d"),
            ThresholdOverride("free", (75,)),
        ),
    )
    assert policy.thresholds("free", "requests", "1d") == (100,)
    assert policy.thresholds("free", "tokens", "1d") == ()
    assert policy.thresholds("free", "tokens", "1h") == (75,)
    assert policy.thresholds("premium", "tokens", "1h") == DEFAULT_THRESHOLDS


def _limiter(clock: FakeClock, heard: list[CounterReading], *, reserve: bool = False) -> Limiter:
    tier = TierConfig.model_validate(
        {
            "reserve": reserve,
            "limits": [
                {"limit": 10, "unit": "requests", "window": "1m"},
                {"limit": 1000, "unit": "tokens", "window": "1h"},
                {"limit": 500, "unit": "tokens", "window": "1h", "per_model": True},
            ],
        }
    )

    def observe(readings: Sequence[CounterReading]) -> None:
        heard.extend(readings)

    return Limiter(InMemoryLimitStorage(), rule_book({"free": tier}, {}), clock, observer=observe)


def test_the_hook_reports_request_counters_on_admission_and_token_counters_once_settled() -> None:
    """Admission reports the request counters' new values; settling reports every token counter's value
    after the charge, naming the user, tier, limit, window and its bounds."""
    clock = FakeClock(start=3600 * 1000 + 30)
    heard: list[CounterReading] = []
    limiter = _limiter(clock, heard)

    async def scenario() -> None:
        admission = await limiter.admit("alice", "free", "m1")
        assert [(r.limit_key, r.used) for r in heard] == [("requests/1m/*", 1)]
        heard.clear()
        await limiter.settle(admission, TokenCharge(300, 120))
        start, end = 3600 * 1000, 3600 * 1001
        assert heard == [
            CounterReading("alice", "free", "tokens/1h/*", 1000, "tokens", "1h", start, end, 420),
            CounterReading("alice", "free", "tokens/1h/m1", 500, "tokens", "1h", start, end, 420),
        ]

    asyncio.run(scenario())


def test_the_hook_reports_what_the_counter_holds_in_reserve_mode_and_after_a_window_change() -> None:
    """With reservations the settled value replaces the reservation; a charge that lands after its window
    ended is reported in the window it landed in."""
    clock = FakeClock(start=3600 * 1000 + 30)
    heard: list[CounterReading] = []
    limiter = _limiter(clock, heard, reserve=True)

    async def scenario() -> None:
        admission = await limiter.admit("alice", "free", "m1", worst_case=TokenCharge(100, 300))
        heard.clear()  # a reservation alone is not reported: only what was charged is
        await limiter.settle(admission, TokenCharge(100, 300))  # exactly the reservation: no storage call
        assert [r.used for r in heard] == [400, 400]
        heard.clear()
        admission = await limiter.admit("alice", "free", "m1", worst_case=TokenCharge(10, 10))
        heard.clear()
        clock.advance(3600)
        await limiter.settle(admission, TokenCharge(5, 5))
        assert [(r.window_start, r.used) for r in heard] == [(3600 * 1001, 10), (3600 * 1001, 10)]

    asyncio.run(scenario())
