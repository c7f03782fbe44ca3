"""A model's pool of backends: only available backends are picked, a retry avoids the backend that failed,
and panic mode picks among all of them when none is available."""

from __future__ import annotations

import pytest

from maas_gateway.balancing import (
    BackendPool,
    BackendState,
    FailureKind,
    HealthPolicy,
    HealthState,
    HealthTracker,
    Lease,
    LeastOutstanding,
    RoundRobin,
)
from tests.support.clock import FakeClock


def _pool(clock: FakeClock, count: int = 3) -> BackendPool:
    policy = HealthPolicy(consecutive_failures=1, base_ejection=10)
    backends = [
        BackendState(f"http://vllm-{n}:8000", health=HealthTracker(policy, clock=clock)) for n in range(count)
    ]
    return BackendPool(backends, LeastOutstanding(), clock=clock)


def _picked(pool: BackendPool, avoid: BackendState | None = None) -> Lease:
    """A pick that must find an available backend."""
    lease = pool.pick(avoid=avoid)
    assert lease is not None, "no backend was available"
    return lease


def _panicked(pool: BackendPool, avoid: BackendState | None = None) -> Lease:
    """A panic pick that must find a backend below its cap."""
    lease = pool.panic_pick(avoid=avoid)
    assert lease is not None, "every backend was at its cap"
    return lease


def test_ejected_and_unhealthy_backends_are_not_picked_until_they_are_back() -> None:
    """A backend ejected by a failed request or marked unhealthy by its health check gets no request;
    the ejected one gets requests again when its ejection ends."""
    clock = FakeClock()
    pool = _pool(clock)
    ejected, unhealthy, healthy = pool.backends
    with _picked(pool) as lease:
        lease.failed(FailureKind.CONNECT)
        first = lease.backend
    assert first is ejected, "the first pick of equal backends starts at the first"
    unhealthy.health.active_result(False, "The health check answered HTTP 503.")
    assert pool.available() == [healthy]
    for _ in range(5):
        with _picked(pool) as lease:
            assert lease.backend is healthy
    clock.advance(10)
    assert pool.available() == [ejected, healthy]


def test_a_retry_avoids_the_backend_that_failed_and_finds_none_when_it_was_the_only_one() -> None:
    """`avoid` leaves out the backend a failed attempt used; with no other backend there is no retry."""
    clock = FakeClock()
    pool = _pool(clock, count=2)
    for _ in range(4):
        with _picked(pool) as first, _picked(pool, avoid=first.backend) as retry:
            assert retry.backend is not first.backend
    single = _pool(clock, count=1)
    with _picked(single) as only:
        assert single.pick(avoid=only.backend) is None


def test_with_no_backend_available_pick_says_so_and_panic_mode_picks_among_all() -> None:
    """When every backend is out, `pick` returns None (the caller tries fallback models first);
    `panic_pick` then picks among every backend, avoiding the one a retry leaves, and is counted."""
    clock = FakeClock()
    pool = _pool(clock, count=2)
    for backend in pool.backends:
        backend.health.active_result(False, "The health check answered HTTP 503.")
    assert pool.pick() is None
    with _panicked(pool) as lease:
        assert lease.backend in pool.backends
    with _panicked(pool, avoid=pool.backends[0]) as lease:
        assert lease.backend is pool.backends[1]
    single = _pool(clock, count=1)
    with _panicked(single, avoid=single.backends[0]) as lease:
        assert lease.backend is single.backends[0], "the only backend, even if a retry left it"
    assert (pool.panics, single.panics) == (2, 1)


def test_the_pool_shows_every_backend_state() -> None:
    """`snapshots` lists each backend with its state at the pool's clock time."""
    clock = FakeClock()
    pool = _pool(clock, count=2)
    with _picked(pool) as lease:
        lease.failed(FailureKind.SERVER_ERROR)
        snapshots = pool.snapshots()
    assert [s.state for s in snapshots] == [HealthState.EJECTED, HealthState.HEALTHY]
    assert snapshots[0].in_flight == 1
    assert snapshots[0].ejected_for == 10


def test_a_pool_needs_a_backend() -> None:
    """An empty pool is refused when it is built, not at the first request."""
    with pytest.raises(ValueError, match="at least one backend"):
        BackendPool([], RoundRobin())
