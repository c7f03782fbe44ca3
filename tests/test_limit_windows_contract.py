"""The limiter over every ``LimitStorage`` (in process, Redis, Redis Cluster) against a reference recount.

Calendar windows (day, week, month in a time zone) and sliding windows are admitted exactly as a naive
recount of the admitted requests says, across month ends, Feb 29 and DST changes, on every storage alike;
concurrent reservations from two replicas never pass a limit. Time is an injected clock; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maas_gateway.application.policies import rule_book
from maas_gateway.config import TierConfig
from maas_gateway.errors import RateLimitError
from maas_gateway.limits import InMemoryLimitStorage, Limiter, LimitStorage, TokenCharge
from maas_gateway.limits.redis_storage import RedisLimitStorage
from maas_gateway.limits.sliding import remaining_weight
from maas_gateway.limits.windows import window_bounds
from tests.support.clock import FakeClock
from tests.support.redis_server import STORAGE_KINDS, storage_url_of


@pytest.fixture(scope="module", params=STORAGE_KINDS)
def storage_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server per kind for the module; every example counts for a user of its own."""
    yield from storage_url_of(request.param, tmp_path_factory.mktemp(request.param))


NOW = 1_800_000_000.0


def _storage(url: str) -> LimitStorage:
    return RedisLimitStorage(url, timeout=2.0) if url else InMemoryLimitStorage()


def _tier(*limits: tuple[int, str, str, str], reserve: bool = False) -> TierConfig:
    return TierConfig.model_validate(
        {
            "reserve": reserve,
            "limits": [{"limit": n, "unit": u, "window": w, "algorithm": a} for n, u, w, a in limits],
        }
    )


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


# Moments just after which a calendar boundary falls: month ends, Feb 29, DST changes, a midnight DST change.
EDGES = [
    ("UTC", _utc(2028, 2, 28, 20)),
    ("UTC", _utc(2026, 12, 31, 22)),
    ("Europe/Berlin", _utc(2026, 3, 28, 20)),
    ("Europe/Berlin", _utc(2026, 10, 24, 20)),
    ("Europe/Berlin", _utc(2026, 3, 31, 18)),
    ("America/New_York", _utc(2026, 11, 1, 2)),
    ("America/Santiago", _utc(2026, 9, 5, 23)),
    ("Australia/Lord_Howe", _utc(2026, 4, 4, 12)),
]
advances = st.one_of(
    st.sampled_from([0.0, 1.0, 59.0, 1800.0, 3599.0, 3600.0, 7200.0, 21600.0, 86399.0, 86400.0]),
    st.floats(min_value=0, max_value=40_000, allow_nan=False),
)


def _period(t: float, unit: str, zone: ZoneInfo) -> object:
    """The reference: which local day, ISO week or month ``t`` falls in, read off the local date."""
    local = datetime.fromtimestamp(t, zone).date()
    if unit == "day":
        return local
    if unit == "week":
        return local.isocalendar()[:2]
    return (local.year, local.month)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(EDGES),
    st.floats(min_value=0, max_value=20_000, allow_nan=False),
    st.lists(st.tuples(advances, st.integers(min_value=0, max_value=30)), max_size=40),
)
def test_calendar_windows_match_a_recount(
    storage_url: str, edge: tuple[str, float], offset: float, steps: Sequence[tuple[float, int]]
) -> None:
    """Requests per day, tokens per week and per month, in a time zone: admitted exactly when a recount of
    the admitted requests by local date says they fit."""
    zone_name, start = edge
    zone = ZoneInfo(zone_name)
    clock = FakeClock(start + offset)
    tier = _tier(
        (3, "requests", "day", "fixed"), (60, "tokens", "week", "fixed"), (100, "tokens", "month", "fixed")
    )
    user = uuid.uuid4().hex
    admitted: list[tuple[float, int]] = []

    async def scenario() -> None:
        storage = _storage(storage_url)
        limiter = Limiter(storage, rule_book({"t": tier}, {}, timezone=zone_name), clock)
        try:
            for advance, tokens in steps:
                clock.advance(advance)
                now = clock.now

                def spent(unit: str, now: float = now) -> int:
                    return sum(n for t, n in admitted if _period(t, unit, zone) == _period(now, unit, zone))

                requests = sum(1 for t, _ in admitted if _period(t, "day", zone) == _period(now, "day", zone))
                expected = requests < 3 and spent("week") < 60 and spent("month") < 100
                try:
                    admission = await limiter.admit(user, "t", "m")
                except RateLimitError:
                    assert not expected
                    continue
                assert expected
                await limiter.settle(admission, TokenCharge(0, tokens))
                admitted.append((now, tokens))
        finally:
            await storage.aclose()

    asyncio.run(scenario())


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from([("1m", 60.0, "UTC"), ("day", "day", "Europe/Berlin"), ("month", "month", "UTC")]),
    st.floats(min_value=0, max_value=1, allow_nan=False),
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=1, allow_nan=False), st.integers(0, 40)), max_size=40
    ),
)
def test_sliding_windows_match_the_weighted_recount(
    storage_url: str,
    window: tuple[str, float | str, str],
    offset: float,
    steps: Sequence[tuple[float, int]],
) -> None:
    """A sliding limit admits exactly when current + floor(previous x share of the window still to come)
    leaves room, with the previous and current windows recounted from the admitted requests."""
    name, span, zone_name = window
    zone = ZoneInfo(zone_name)
    start = _utc(2026, 3, 28, 12) if name == "day" else _utc(2028, 2, 27)
    length = 60.0 if name == "1m" else (86_400.0 if name == "day" else 30 * 86_400.0)
    clock = FakeClock(start + offset * length)
    tier = _tier((4, "requests", name, "sliding"), (90, "tokens", name, "sliding"))
    user = uuid.uuid4().hex
    admitted: list[tuple[float, int]] = []

    def estimate(now: float, unit_of: int) -> int:
        begin, end = window_bounds(now, span, zone)  # type: ignore[arg-type]  # a length or a unit
        previous_begin = window_bounds(begin - 1.0, span, zone)[0]  # type: ignore[arg-type]  # same
        current = sum(1 if unit_of == 0 else n for t, n in admitted if begin <= t < end)
        previous = sum(1 if unit_of == 0 else n for t, n in admitted if previous_begin <= t < begin)
        return current + previous * remaining_weight(begin, end, now) // 1_000_000

    async def scenario() -> None:
        storage = _storage(storage_url)
        limiter = Limiter(storage, rule_book({"t": tier}, {}, timezone=zone_name), clock)
        try:
            for advance, tokens in steps:
                clock.advance(advance * length / 2)
                now = clock.now
                expected = estimate(now, 0) + 1 <= 4 and estimate(now, 1) < 90
                try:
                    admission = await limiter.admit(user, "t", "m")
                except RateLimitError:
                    assert not expected
                    continue
                assert expected
                assert admission.values == (estimate(now, 0) + 1, estimate(now, 1))
                await limiter.settle(admission, TokenCharge(tokens, 0))
                admitted.append((now, tokens))
        finally:
            await storage.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize("algorithm", ["fixed", "sliding"])
def test_a_burst_straddling_a_boundary(storage_url: str, algorithm: str) -> None:
    """10 requests per minute, 10 sent in the last second of a minute and 10 in the first of the next:
    fixed windows admit all 20 (twice the limit within two seconds), the sliding window admits 10 in all."""
    clock = FakeClock(_utc(2026, 12, 1, 12, 0, 59))
    tier = _tier((10, "requests", "1m", algorithm))
    user = uuid.uuid4().hex

    async def burst(limiter: Limiter) -> int:
        passed = 0
        for _ in range(10):
            try:
                await limiter.admit(user, "t", "m")
                passed += 1
            except RateLimitError:
                pass
        return passed

    async def scenario() -> tuple[int, int, int | None]:
        storage = _storage(storage_url)
        limiter = Limiter(storage, rule_book({"t": tier}, {}), clock)
        try:
            before = await burst(limiter)
            clock.advance(1.5)
            after = await burst(limiter)
            retry = None
            try:
                await limiter.admit(user, "t", "m")
            except RateLimitError as refusal:
                retry = refusal.retry_after_seconds
            return before, after, retry
        finally:
            await storage.aclose()

    before, after, retry = asyncio.run(scenario())
    if algorithm == "fixed":
        assert (before, after, retry) == (10, 10, 60)
    else:
        # 0.5 s into the minute the previous ten weigh 9.9 (floored to 9): room for one more. The next
        # fits once the previous minute weighs 8, 12 s into this one.
        assert (before, after) == (10, 1)
        assert retry == 12


def test_calendar_reset_is_the_real_boundary(storage_url: str) -> None:
    """A month in Berlin ends at local midnight on the 1st: Retry-After and x-ratelimit-reset-tokens say so,
    and the next month's counter starts from nothing."""
    clock = FakeClock(_utc(2026, 3, 31, 21, 59, 0))  # 23:59 in Berlin, summer time
    tier = _tier((10, "tokens", "month", "fixed"))

    async def scenario() -> None:
        storage = _storage(storage_url)
        limiter = Limiter(storage, rule_book({"t": tier}, {}, timezone="Europe/Berlin"), clock)
        user = uuid.uuid4().hex
        try:
            admission = await limiter.admit(user, "t", "m")
            await limiter.settle(admission, TokenCharge(5, 5))
            with pytest.raises(RateLimitError, match=r"10 tokens per month \(Europe/Berlin\)") as refusal:
                await limiter.admit(user, "t", "m")
            assert refusal.value.retry_after_seconds == 60
            assert refusal.value.headers()["x-ratelimit-reset-tokens"] == "60s"
            clock.advance(60)
            assert (await limiter.admit(user, "t", "m")).values == (0,)
        finally:
            await storage.aclose()

    asyncio.run(scenario())


def test_concurrent_reservations_on_two_replicas_never_pass_the_limit(storage_url: str) -> None:
    """60 reservations at once from two replicas (two limiters, two connections) against 300 tokens: what
    they hold together never passes 300, lowered caps included, and what is left is too little for one more
    useful answer."""
    tier = _tier((300, "tokens", "1h", "fixed"), reserve=True)

    async def scenario() -> tuple[int, int]:
        storages = [_storage(storage_url) for _ in range(2)] if storage_url else [InMemoryLimitStorage()] * 2
        limiters = [Limiter(storage, rule_book({"t": tier}, {}), FakeClock(NOW)) for storage in storages]
        user = uuid.uuid4().hex

        async def one(index: int) -> int:
            limiter = limiters[index % 2]
            try:
                admission = await limiter.reserve(
                    user, "t", "m", prompt=29, output_cap=50, choices=1, multiplier=1.0
                )
            except RateLimitError:
                return 0
            assert admission.reserved is not None
            assert admission.output_cap is not None
            assert 16 <= admission.output_cap <= 50
            return admission.reserved.total

        try:
            held = await asyncio.gather(*(one(index) for index in range(60)))
            return sum(held), sum(1 for amount in held if amount)
        finally:
            for storage in set(storages):
                await storage.aclose()

    total, admitted = asyncio.run(scenario())
    assert total <= 300
    assert 300 - total < 29 + 16  # no room for another useful answer was left unused
    assert admitted >= 300 // 79
