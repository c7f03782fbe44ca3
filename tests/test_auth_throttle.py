"""The failed-authentication throttle alone: token buckets per address, driven by a hand-set clock."""

from __future__ import annotations

import logging

import pytest

from maas_gateway.auth.failure_gate import FailureGate
from maas_gateway.auth.throttle import FailureThrottle
from maas_gateway.errors import AuthenticationThrottledError
from tests.support.clock import FakeClock

T0 = 1_000.0


def _throttle(burst: int = 3, per: float = 6.0, max_addresses: int = 100) -> FailureThrottle:
    return FailureThrottle(burst=burst, per=per, max_addresses=max_addresses)


def test_a_burst_of_failures_is_allowed_then_the_address_is_refused() -> None:
    """`burst` failures are allowed in a row; after them the address must wait; others are unaffected."""
    throttle = _throttle(burst=3, per=6.0)
    for _ in range(2):
        assert throttle.failed("10.0.0.1", T0) is False
        assert throttle.retry_after("10.0.0.1", T0) == 0.0
    assert throttle.failed("10.0.0.1", T0) is True  # the third spends the last attempt
    assert throttle.retry_after("10.0.0.1", T0) == pytest.approx(2.0)  # one attempt back per 6/3 s
    assert throttle.retry_after("10.0.0.2", T0) == 0.0
    assert (throttle.failures, throttle.throttled) == (3, 1)


def test_the_allowance_refills_at_burst_per_period() -> None:
    """One attempt comes back every per/burst seconds; retry_after counts down to it."""
    throttle = _throttle(burst=3, per=6.0)
    for _ in range(3):
        throttle.failed("a", T0)
    assert throttle.retry_after("a", T0 + 1.5) == pytest.approx(0.5)
    assert throttle.retry_after("a", T0 + 2.0) == 0.0
    assert throttle.failed("a", T0 + 2.0) is False  # same episode: not reported again
    assert throttle.retry_after("a", T0 + 2.0) == pytest.approx(2.0)
    assert throttle.retry_after("a", T0 + 4.0) == 0.0


def test_refused_attempts_do_not_extend_the_wait() -> None:
    """Knocking while throttled spends nothing: the wait ends on time however often the address tries."""
    throttle = _throttle(burst=2, per=4.0)
    throttle.failed("a", T0)
    throttle.failed("a", T0)
    for step in range(19):
        assert throttle.retry_after("a", T0 + step * 0.1) > 0
    assert throttle.retry_after("a", T0 + 2.0) == 0.0
    assert throttle.throttled == 19


def test_an_episode_is_reported_once_until_the_bucket_is_full_again() -> None:
    """A guesser trying at the refill rate is reported once; after a full refill a new episode is new."""
    throttle = _throttle(burst=2, per=2.0)
    started = [throttle.failed("a", T0), throttle.failed("a", T0)]
    for second in range(1, 6):  # one failure per refilled attempt: throttled again each time
        started.append(throttle.failed("a", T0 + second))
    assert started == [False, True, False, False, False, False, False]
    later = T0 + 5 + 2.0  # full again
    assert [throttle.failed("a", later), throttle.failed("a", later)] == [False, True]


def test_the_wait_never_exceeds_the_period_even_when_overdrawn() -> None:
    """Failures that passed the check concurrently overdraw the bucket, but a refusal lasts at most `per`."""
    throttle = _throttle(burst=4, per=8.0)
    for _ in range(50):
        throttle.failed("a", T0)
    assert throttle.retry_after("a", T0) == pytest.approx(8.0)


def test_the_table_of_addresses_is_capped_forgetting_the_least_recent() -> None:
    """A flood of addresses cannot grow the table past max_addresses; the oldest failures go first."""
    throttle = _throttle(burst=1, per=60.0, max_addresses=100)
    for number in range(10_000):
        throttle.failed(f"10.0.{number // 256}.{number % 256}", T0)
    assert len(throttle) == 100
    assert throttle.retry_after("10.0.0.0", T0) == 0.0  # forgotten
    assert throttle.retry_after("10.0.39.15", T0) > 0  # the last one, still refused


def test_full_buckets_are_forgotten() -> None:
    """An address whose allowance has refilled is dropped from the table (as if it had never failed)."""
    throttle = _throttle(burst=2, per=2.0)
    throttle.failed("a", T0)
    throttle.failed("b", T0 + 5.0)  # "a" is full again by now
    assert len(throttle) == 1


@pytest.mark.parametrize(
    ("burst", "per", "max_addresses"), [(0, 1.0, 1), (1, 0.0, 1), (1, 1.0, 0)], ids=["burst", "per", "cap"]
)
def test_nonsense_settings_are_refused(burst: int, per: float, max_addresses: int) -> None:
    """A zero burst, period or cap is a programming error, refused with a sentence."""
    with pytest.raises(ValueError, match="at least 1"):
        FailureThrottle(burst=burst, per=per, max_addresses=max_addresses)


def test_the_gate_refuses_with_retry_after_and_logs_once_without_the_credential(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The gate raises a 429 with a whole-second Retry-After and logs the address once per episode."""
    clock = FakeClock(T0)
    gate = FailureGate(_throttle(burst=2, per=3.0), clock)
    with caplog.at_level(logging.WARNING, logger="maas_gateway.auth"):
        for _ in range(5):
            gate.check("192.0.2.7")  # raises once throttled; the first two pass
            gate.failed("192.0.2.7")
            if gate.throttle.retry_after("192.0.2.7", clock.now):
                break
        with pytest.raises(AuthenticationThrottledError) as refused:
            gate.check("192.0.2.7")
        clock.now += 0.2
        with pytest.raises(AuthenticationThrottledError):
            gate.check("192.0.2.7")
    error = refused.value
    assert (error.status_code, error.code) == (429, "too_many_failed_authentications")
    assert error.headers() == {"retry-after": "2"}  # 1.5 s rounded up
    assert error.message.endswith("try again in 2 seconds.")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "192.0.2.7" in warnings[0]
    clock.now += 1.3
    gate.check("192.0.2.7")  # refilled: passes
