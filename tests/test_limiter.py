"""The limits policy alone, with the in-process storage and a controllable clock."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maas_gateway.config import TierConfig, UserConfig, demo_config
from maas_gateway.errors import RateLimitError
from maas_gateway.limits import InMemoryLimitStorage, Limiter, RuleBook, TokenCharge


class Clock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def _limiter(
    tiers: dict[str, TierConfig] | None = None,
    users: dict[str, UserConfig] | None = None,
    clock: Clock | None = None,
) -> Limiter:
    tiers = tiers if tiers is not None else demo_config().tiers
    return Limiter(InMemoryLimitStorage(), RuleBook(tiers, users or {}), clock or Clock())


def _tier(*limits: tuple[int, str, str], reserve: bool = False) -> TierConfig:
    return TierConfig.model_validate(
        {"reserve": reserve, "limits": [{"limit": n, "unit": u, "window": w} for n, u, w in limits]}
    )


async def _use(limiter: Limiter, user: str, tier: str, tokens: int, model: str = "m") -> None:
    admission = await limiter.admit(user, tier, model)
    await limiter.settle(admission, TokenCharge(tokens // 2, tokens - tokens // 2))


def test_hour_window_is_enforced_and_resets_on_the_hour() -> None:
    """The free tier's 5,000 tokens per hour stop a user mid-hour and come back in the next hour."""
    clock = Clock(start=3600 * 500_000)  # exactly on an hour boundary
    limiter = _limiter(clock=clock)

    async def scenario() -> None:
        for _ in range(25):  # 25 minutes of 200 tokens: the minute limit never binds, the hour does
            await _use(limiter, "u", "free", 200)
            clock.now += 60
        with pytest.raises(RateLimitError, match="5000 tokens per 1h") as caught:
            await limiter.admit("u", "free", "m")
        assert caught.value.retry_after_seconds == 3600 - 25 * 60
        clock.now = 3600 * 500_001
        await limiter.admit("u", "free", "m")

    asyncio.run(scenario())


def test_day_window_is_enforced_until_the_next_utc_day() -> None:
    """The premium tier's 500,000 tokens per day hold across hours until midnight UTC."""
    day = 86400 * 20_000
    clock = Clock(start=day)
    limiter = _limiter(clock=clock)

    async def scenario() -> None:
        for hour in range(17):  # 16 hours of 30,000 tokens, then 20,000: 500,000 in all
            for _ in range(30 if hour < 16 else 20):
                await _use(limiter, "u", "premium", 1000)
                clock.now += 60
            clock.now += 3600 - (30 if hour < 16 else 20) * 60
        with pytest.raises(RateLimitError, match="500000 tokens per 1d"):
            await limiter.admit("u", "premium", "m")
        clock.now = day + 86400
        await limiter.admit("u", "premium", "m")

    asyncio.run(scenario())


def test_rejected_requests_change_no_counter() -> None:
    """A request refused by one window is not counted in any other window."""
    limiter = _limiter({"t": _tier((3, "requests", "1m"), (100, "requests", "1h"))})

    async def scenario() -> tuple[int, ...]:
        for _ in range(3):
            await limiter.admit("u", "t", "m")
        for _ in range(10):
            with pytest.raises(RateLimitError):
                await limiter.admit("u", "t", "m")
        limiter._clock.now += 60  # type: ignore[attr-defined]  # the test clock of this limiter
        return (await limiter.admit("u", "t", "m")).values

    assert asyncio.run(scenario()) == (1, 4)


def test_user_override_replaces_tier_limits() -> None:
    """A user with their own limits is held to those, others to the tier's."""
    users = {"vip": UserConfig.model_validate({"limits": [{"limit": 1, "unit": "requests", "window": "1m"}]})}
    limiter = _limiter(users=users)

    async def scenario() -> None:
        await limiter.admit("vip", "free", "m")
        with pytest.raises(RateLimitError):
            await limiter.admit("vip", "free", "m")
        for _ in range(5):
            await limiter.admit("other", "free", "m")

    asyncio.run(scenario())


def test_per_model_limits_count_each_model_apart() -> None:
    """`per_model: true` keeps one counter per model."""
    tier = TierConfig.model_validate(
        {"limits": [{"limit": 1, "unit": "requests", "window": "1m", "per_model": True}]}
    )
    limiter = _limiter({"t": tier})

    async def scenario() -> None:
        await limiter.admit("u", "t", "a")
        await limiter.admit("u", "t", "b")
        with pytest.raises(RateLimitError):
            await limiter.admit("u", "t", "a")

    asyncio.run(scenario())


def test_reserve_settles_to_actual_usage() -> None:
    """Reserve mode holds the worst case, then gives back what was not used."""
    limiter = _limiter({"t": _tier((100, "tokens", "1m"), reserve=True)})

    async def scenario() -> None:
        admission = await limiter.admit("u", "t", "m", worst_case=TokenCharge(20, 60))
        assert admission.values == (80,)
        with pytest.raises(RateLimitError):
            await limiter.admit("u", "t", "m", worst_case=TokenCharge(20, 10))
        assert await limiter.settle(admission, TokenCharge(10, 5)) == (15,)
        await limiter.admit("u", "t", "m", worst_case=TokenCharge(20, 60))

    asyncio.run(scenario())


def test_token_charge_applies_the_multiplier_once() -> None:
    """Multipliers round the total up once and split it between input and output."""
    charge = TokenCharge.of(10, 5, 1.5)
    assert (charge.prompt, charge.completion, charge.total) == (15, 8, 23)
    assert TokenCharge.of(3, 4, 1.0).total == 7


Step = tuple[float, int]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(min_value=0, max_value=40), st.integers(min_value=0, max_value=60)), max_size=60
    )
)
def test_fixed_windows_match_a_reference_model(steps: Sequence[Step]) -> None:
    """For any timing and usage, admissions equal those of a naive recount of each fixed window."""
    request_limit, request_window, token_limit, token_window = 4, 60.0, 100, 30.0
    clock = Clock(start=1_000_020.0)
    limiter = _limiter(
        {"t": _tier((request_limit, "requests", "1m"), (token_limit, "tokens", "30s"))}, clock=clock
    )
    admitted_at: list[float] = []
    charged: list[tuple[float, int]] = []

    async def scenario() -> None:
        for advance, tokens in steps:
            clock.now += advance
            now = clock.now
            requests = sum(1 for t in admitted_at if t // request_window == now // request_window)
            spent = sum(n for t, n in charged if t // token_window == now // token_window)
            expected = requests + 1 <= request_limit and spent < token_limit
            try:
                admission = await limiter.admit("u", "t", "m")
            except RateLimitError:
                assert not expected
                continue
            assert expected
            admitted_at.append(now)
            await limiter.settle(admission, TokenCharge(0, tokens))
            charged.append((now, tokens))

    asyncio.run(scenario())
