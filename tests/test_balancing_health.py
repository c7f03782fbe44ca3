"""A backend's health alone: active thresholds, passive ejection with a growing backoff, and what a
backend shows (its snapshot), all on a hand-set clock."""

from __future__ import annotations

from typing import Any

import pytest

from maas_gateway.balancing import (
    BackendState,
    FailureKind,
    HealthPolicy,
    HealthState,
    HealthTracker,
    Lease,
    LoadSample,
)
from tests.support.clock import FakeClock

CONNECT, SERVER_ERROR = FailureKind.CONNECT, FailureKind.SERVER_ERROR


def _tracker(
    clock: FakeClock,
    *,
    healthy_threshold: int = 2,
    unhealthy_threshold: int = 3,
    consecutive_failures: int = 3,
    base_ejection: float = 10,
    max_ejection: float = 60,
    recovery_successes: int = 4,
) -> HealthTracker:
    policy = HealthPolicy(
        healthy_threshold=healthy_threshold,
        unhealthy_threshold=unhealthy_threshold,
        consecutive_failures=consecutive_failures,
        base_ejection=base_ejection,
        max_ejection=max_ejection,
        recovery_successes=recovery_successes,
    )
    return HealthTracker(policy, clock=clock)


def _fail(tracker: HealthTracker, times: int, kind: FailureKind = CONNECT) -> None:
    for _ in range(times):
        tracker.passive_failure(kind)


def test_a_new_backend_is_presumed_healthy_and_the_first_check_decides_at_once() -> None:
    """Before any check a backend may take requests; the first result sets the state without thresholds."""
    clock = FakeClock()
    tracker = _tracker(clock)
    assert tracker.available(clock.now)
    assert tracker.state(clock.now) is HealthState.HEALTHY
    tracker.active_result(False, "The health check answered HTTP 503.")
    assert not tracker.available(clock.now)
    assert tracker.state(clock.now) is HealthState.UNHEALTHY
    assert tracker.reason(clock.now) == "The health check answered HTTP 503."
    assert tracker.marked_unhealthy == 1

    starts_dead_then_lives = _tracker(clock)
    starts_dead_then_lives.active_result(True)
    assert starts_dead_then_lives.available(clock.now)


def test_active_checks_change_the_state_only_after_their_thresholds_in_a_row() -> None:
    """Unhealthy after `unhealthy_threshold` failures in a row (a success in between starts over);
    healthy again after `healthy_threshold` successes in a row."""
    clock = FakeClock()
    tracker = _tracker(clock, unhealthy_threshold=3, healthy_threshold=2)
    tracker.active_result(True)
    for ok in (False, False, True, False, False):
        tracker.active_result(ok, "The health check failed.")
        assert tracker.available(clock.now), "no three failures in a row yet"
    tracker.active_result(False, "The health check failed: it timed out.")
    assert tracker.state(clock.now) is HealthState.UNHEALTHY
    assert tracker.reason(clock.now) == "The health check failed: it timed out."

    tracker.active_result(True)
    tracker.active_result(False, "Again.")
    tracker.active_result(True)
    assert not tracker.available(clock.now), "the failure in between started the count over"
    tracker.active_result(True)
    assert tracker.available(clock.now)
    assert tracker.reason(clock.now) is None
    assert tracker.marked_unhealthy == 1


def test_consecutive_request_failures_eject_the_backend_until_its_time_is_up() -> None:
    """`consecutive_failures` failures in a row, of either kind, eject it for `base_ejection` seconds
    (counted under the last failure's kind); a success in between starts the count over; the ejection
    ends by itself."""
    clock = FakeClock()
    tracker = _tracker(clock, consecutive_failures=3, base_ejection=10)
    _fail(tracker, 2)
    tracker.passive_success()
    _fail(tracker, 2, CONNECT)
    assert tracker.available(clock.now)
    tracker.passive_failure(SERVER_ERROR)
    assert tracker.state(clock.now) is HealthState.EJECTED
    assert (
        tracker.reason(clock.now)
        == "3 requests in a row failed (the last got a 5xx answer); ejected for 10 s."
    )
    assert tracker.ejected_until == clock.now + 10
    assert not tracker.available(clock.now + 9.999)
    assert tracker.available(clock.now + 10)
    assert tracker.ejections_by_kind == {CONNECT: 0, SERVER_ERROR: 1}
    assert tracker.ejections == 1


def test_a_backend_that_keeps_failing_after_it_returns_is_ejected_for_twice_as_long_up_to_the_cap() -> None:
    """After an ejection one failure ejects it again, each time for twice as long, never beyond
    `max_ejection`."""
    clock = FakeClock()
    tracker = _tracker(clock, consecutive_failures=3, base_ejection=10, max_ejection=60)
    _fail(tracker, 3)
    durations = []
    for _ in range(5):
        assert tracker.ejected_until is not None
        durations.append(tracker.ejected_until - clock.now)
        clock.now = tracker.ejected_until
        assert tracker.on_probation
        assert tracker.available(clock.now)
        tracker.passive_failure(CONNECT)
    assert durations == [10, 20, 40, 60, 60]
    assert tracker.ejections == 6
    assert tracker.reason(clock.now) == (
        "A request could not connect soon after an ejection ended; ejected for 60 s."
    )


def test_sustained_success_after_an_ejection_forgives_it() -> None:
    """`recovery_successes` successes in a row after returning end probation: the next trouble needs
    `consecutive_failures` failures again and gets the base ejection time."""
    clock = FakeClock()
    tracker = _tracker(clock, consecutive_failures=3, base_ejection=10, recovery_successes=4)
    _fail(tracker, 3)
    clock.advance(10)
    for _ in range(3):
        tracker.passive_success()
    tracker.passive_failure(CONNECT)
    assert tracker.state(clock.now) is HealthState.EJECTED, "three successes were not enough"
    assert tracker.ejected_until == clock.now + 20
    clock.advance(20)
    for _ in range(4):
        tracker.passive_success()
    assert not tracker.on_probation
    _fail(tracker, 2)
    assert tracker.available(clock.now)
    tracker.passive_failure(CONNECT)
    assert tracker.ejected_until == clock.now + 10


def test_answers_to_requests_sent_before_an_ejection_neither_extend_nor_end_it() -> None:
    """Failures and successes reported while ejected (requests that were in flight) change nothing."""
    clock = FakeClock()
    tracker = _tracker(clock, consecutive_failures=1, base_ejection=10)
    tracker.passive_failure(CONNECT)
    until = tracker.ejected_until
    clock.advance(5)
    _fail(tracker, 5)
    for _ in range(10):
        tracker.passive_success()
    assert tracker.ejected_until == until
    assert tracker.ejections == 1
    assert tracker.on_probation


def test_a_passing_health_check_does_not_end_an_ejection_and_ejection_is_shown_first() -> None:
    """Ejection lasts its time whatever `/health` says; while it lasts the state shown is `ejected`, after
    it the active verdict shows again."""
    clock = FakeClock()
    tracker = _tracker(clock, consecutive_failures=1, base_ejection=10)
    tracker.active_result(False, "The health check answered HTTP 503.")
    tracker.passive_failure(SERVER_ERROR)
    assert tracker.state(clock.now) is HealthState.EJECTED
    tracker.active_result(True)
    tracker.active_result(True)
    assert not tracker.available(clock.now)
    clock.advance(10)
    assert tracker.state(clock.now) is HealthState.HEALTHY
    tracker.active_result(False, "The health check answered HTTP 503.")
    tracker.active_result(False, "The health check answered HTTP 503.")
    tracker.active_result(False, "The health check answered HTTP 503.")
    assert tracker.state(clock.now) is HealthState.UNHEALTHY


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"healthy_threshold": 0}, "healthy_threshold must be at least 1, not 0"),
        ({"consecutive_failures": -1}, "consecutive_failures must be at least 1"),
        ({"base_ejection": 0}, "base_ejection must be positive"),
        ({"base_ejection": 30, "max_ejection": 10}, "at most max_ejection"),
        ({"max_ejection": float("inf")}, "must be finite"),
    ],
)
def test_impossible_health_policies_are_refused_with_a_sentence(policy: dict[str, Any], message: str) -> None:
    """Thresholds below one and ejection times out of order are refused, saying which setting is wrong."""
    with pytest.raises(ValueError, match=message):
        HealthPolicy(**policy)


def test_a_backend_snapshot_shows_state_reason_time_left_requests_and_load_without_the_password() -> None:
    """The snapshot has what `/ready` and `/admin/models` show, with times relative to now and the URL's
    password hidden (also in the backend's repr)."""
    clock = FakeClock()
    tracker = _tracker(clock, consecutive_failures=1, base_ejection=10)
    backend = BackendState("https://gw:s3cret@vllm-0.internal:8000", weight=2, health=tracker)
    assert "s3cret" not in repr(backend)
    lease = Lease(backend)
    backend.record_load(LoadSample(waiting=1, running=7, kv_cache_usage=0.5), at=clock.now, started_before=0)
    clock.advance(0.25)
    backend.record_load_failure("The metrics answered HTTP 500.")
    lease.failed(CONNECT)
    clock.advance(4)

    snapshot = backend.snapshot(clock.now)
    assert snapshot.as_dict() == {
        "url": "https://gw:***@vllm-0.internal:8000",
        "weight": 2,
        "state": "ejected",
        "reason": "A request could not connect; ejected for 10 s.",
        "ejected_for": 6.0,
        "in_flight": 1,
        "max_in_flight": None,
        "load": {"waiting": 1, "running": 7, "kv_cache_usage": 0.5},
        "load_age": 4.25,
        "load_error": "The metrics answered HTTP 500.",
        "ejections": 1,
    }
    lease.release()
    clock.advance(6)
    after = backend.snapshot(clock.now)
    assert (after.state, after.reason, after.ejected_for, after.in_flight) == (
        HealthState.HEALTHY,
        None,
        None,
        0,
    )


@pytest.mark.parametrize("weight", [0, -1, float("nan"), float("inf")])
def test_a_backend_weight_must_be_a_positive_number(weight: float) -> None:
    """Zero, negative and non-finite weights are refused, naming the backend."""
    with pytest.raises(ValueError, match=r"must be a positive number.*vllm-0"):
        BackendState("http://vllm-0:8000", weight=weight)


def test_a_lease_counts_one_request_until_released_once_and_reports_one_outcome() -> None:
    """A lease is in flight from creation to release; releasing twice or leaving its `with` block by an
    exception releases once; only its first outcome reaches the health tracker."""
    clock = FakeClock()
    backend = BackendState("http://vllm-0:8000", health=_tracker(clock, consecutive_failures=2))
    first = Lease(backend)
    second = Lease(backend)

    def request_that_fails() -> None:
        with second:
            assert backend.in_flight == 2
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError):
        request_that_fails()
    assert second.released
    assert backend.in_flight == 1
    first.failed(CONNECT)
    first.failed(CONNECT)
    first.succeeded()
    first.release()
    first.release()
    assert backend.in_flight == 0
    assert backend.started == 2
    assert backend.available(clock.now), "the second report of the same lease did not count"
    Lease(backend).failed(CONNECT)
    assert not backend.available(clock.now)
