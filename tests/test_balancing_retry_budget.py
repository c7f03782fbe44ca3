"""The retry budget: retries allowed up to a share of recent requests, with a floor, over a sliding window
on a hand-set clock."""

from __future__ import annotations

from typing import Any

import pytest

from maas_gateway.balancing.retry_budget import RetryBudget
from tests.support.clock import FakeClock


def _spend_all(budget: RetryBudget) -> int:
    spent = 0
    while budget.try_spend():
        spent += 1
    return spent


def test_retries_are_allowed_up_to_the_ratio_of_requests_in_the_window() -> None:
    """With 100 requests in the window and a ratio of 20 %, 20 retries pass and the 21st is refused (and
    counted as refused)."""
    clock = FakeClock()
    budget = RetryBudget(ratio=0.2, min_retries=3, window=10, clock=clock)
    for _ in range(100):
        budget.record_request()
    assert _spend_all(budget) == 20
    assert (budget.requests, budget.retries, budget.refused) == (100, 20, 1)


def test_low_traffic_can_still_retry_a_few_times_per_window() -> None:
    """With almost no requests, `min_retries` retries per window are allowed anyway."""
    clock = FakeClock()
    budget = RetryBudget(ratio=0.2, min_retries=3, window=10, clock=clock)
    budget.record_request()
    assert _spend_all(budget) == 3


def test_the_window_slides_so_old_requests_and_retries_stop_counting() -> None:
    """Requests and retries older than the window are forgotten step by step: a burst's allowance lasts
    one window, and spent retries come back as their step leaves it."""
    clock = FakeClock(start=0.0)
    budget = RetryBudget(ratio=0.5, min_retries=0, window=10, buckets=10, clock=clock)
    for _ in range(10):
        budget.record_request()  # at t=0
    clock.advance(5)
    for _ in range(10):
        budget.record_request()  # at t=5
    assert _spend_all(budget) == 10
    clock.advance(5)  # t=10: the step of t=0 has left the window, with its 10 requests
    assert (budget.requests, budget.retries) == (10, 10)
    assert not budget.try_spend()
    clock.advance(5)  # t=15: everything has left
    assert (budget.requests, budget.retries) == (0, 0)
    clock.advance(1000)  # a long quiet spell costs no more than one pass over the steps
    budget.record_request()
    budget.record_request()
    assert _spend_all(budget) == 1


def test_a_zero_ratio_and_no_floor_means_no_retries() -> None:
    """Retries can be switched off with ratio 0 and min_retries 0."""
    budget = RetryBudget(ratio=0, min_retries=0, clock=FakeClock())
    for _ in range(50):
        budget.record_request()
    assert not budget.try_spend()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ratio": -0.1}, "ratio must be finite and zero or more"),
        ({"ratio": float("nan")}, "ratio must be finite"),
        ({"min_retries": -1}, "min_retries must be zero or more"),
        ({"window": 0}, "window must be positive"),
        ({"buckets": 0}, "at least one bucket"),
    ],
)
def test_impossible_budgets_are_refused_with_a_sentence(settings: dict[str, Any], message: str) -> None:
    """Negative or non-finite settings are refused, saying which one."""
    with pytest.raises(ValueError, match=message):
        RetryBudget(**settings)
