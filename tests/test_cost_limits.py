"""Money as a limit unit: versioned prices, integer micro-units, reserve mode and refusals in money."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from maas_gateway.alerts.thresholds import DEFAULT_THRESHOLDS, crossed_thresholds
from maas_gateway.application.policies import price_schedule, rule_book
from maas_gateway.config import TierConfig
from maas_gateway.config.schema import LimitConfig, ModelConfig
from maas_gateway.errors import RateLimitError
from maas_gateway.limits import CounterReading, InMemoryLimitStorage, Limiter, TokenCharge, rate_limit_headers
from maas_gateway.pricing import PriceSchedule, PriceVersion, format_money, to_micros
from tests.support.clock import FakeClock

NOV_1 = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
NOV_15 = datetime(2026, 11, 15, tzinfo=UTC).timestamp()


def test_a_price_per_million_tokens_is_a_tokens_price_in_micro_units() -> None:
    """1,000 input tokens at $3 per million cost 3,000 micro-units ($0.003); cached input is priced apart;
    a fraction of a micro-unit is rounded up, once, for the whole request."""
    price = PriceVersion(NOV_1, input_per_million=3.0, output_per_million=15.0, cached_input_per_million=0.3)
    assert price.micros(1000, 0) == 3000
    assert price.micros(1000, 200, cached_tokens=400) == 600 * 3 + 400 * 0.3 + 200 * 15
    assert PriceVersion(NOV_1, input_per_million=0.15).micros(3, 0) == 1  # 0.45 rounds up
    assert price.cost(1000, 200) == pytest.approx(0.006)
    assert price.micros(10, 0, cached_tokens=50) == 3  # never more cached than prompt


@given(
    prompt=st.integers(0, 10**7),
    completion=st.integers(0, 10**6),
    cents=st.integers(0, 10_000),
)
def test_micro_units_never_undercharge(prompt: int, completion: int, cents: int) -> None:
    """The charge in micro-units is the exact money rounded up (a request never costs less than its
    tokens at the price), and at most one micro-unit more."""
    per_million = cents / 100
    micros = PriceVersion(0.0, per_million, per_million).micros(prompt, completion)
    exact = (prompt + completion) * cents / 100  # exact in micro-units
    assert exact - 1e-6 <= micros < exact + 1


def test_the_version_in_effect_is_the_latest_that_started() -> None:
    """Before the first version a model is free; each version holds until the next one starts."""
    first, second = PriceVersion(NOV_1, 1.0), PriceVersion(NOV_15, 2.0)
    schedule = PriceSchedule([second, first])
    assert schedule.at(NOV_1 - 1) is None
    assert schedule.at(NOV_1) is first
    assert schedule.at(NOV_15 - 0.001) is first
    assert schedule.at(NOV_15) is second
    assert second.name == "2026-11-15T00:00:00Z"
    with pytest.raises(ValueError, match="same moment"):
        PriceSchedule([first, PriceVersion(NOV_1, 5.0)])


def test_a_version_is_named_once_for_its_effective_moment() -> None:
    """The name every usage record carries, built when the version is: whole seconds without a fraction,
    a fraction of a second with microseconds; versions equal in prices and moment are equal."""
    assert PriceVersion(NOV_1 + 0.25, 1.0).name == "2026-11-01T00:00:00.250000Z"
    assert PriceVersion(NOV_1, 1.0).name == "2026-11-01T00:00:00Z"
    assert PriceVersion(NOV_1, 1.0) == PriceVersion(NOV_1, 1.0)
    assert hash(PriceVersion(NOV_1, 1.0)) == hash(PriceVersion(NOV_1, 1.0))


def test_money_reads_as_money() -> None:
    """Amounts show at least cents and as many further digits as they have; other currencies by code."""
    assert format_money(5_000_000, "USD") == "$5.00"
    assert format_money(12_300, "USD") == "$0.0123"
    assert format_money(1, "EUR") == "€0.000001"
    assert format_money(1_234_500_000, "CHF") == "1,234.50 CHF"
    assert to_micros(0.25) == 250_000


def test_the_older_pricing_is_one_version_from_the_epoch_and_both_forms_are_refused() -> None:
    """`pricing: {prompt_per_1k, completion_per_1k}` keeps working: one version effective from the
    epoch, per million = per 1k x 1000, cached input at the input price. Giving both forms is an error."""
    model = ModelConfig.model_validate(
        {"name": "m", "backends": ["http://b"], "pricing": {"prompt_per_1k": 0.5, "completion_per_1k": 1.5}}
    )
    schedule = price_schedule(model)
    assert schedule is not None
    assert schedule.versions == (PriceVersion(0.0, 500.0, 1500.0, 500.0),)
    with pytest.raises(ValidationError, match="either as `pricing` or as `prices`"):
        ModelConfig.model_validate(
            {
                "name": "m",
                "backends": ["http://b"],
                "pricing": {"prompt_per_1k": 0.5},
                "prices": [{"effective_from": "2026-11-01", "input_per_million": 1}],
            }
        )
    dated = ModelConfig.model_validate(
        {
            "name": "m",
            "backends": ["http://b"],
            "prices": [
                {"effective_from": "2026-11-15T00:00:00+00:00", "input_per_million": 2},
                {"effective_from": "2026-11-01", "input_per_million": 1, "cached_input_per_million": 0.1},
            ],
        }
    )
    schedule = price_schedule(dated)
    assert schedule is not None
    assert [v.effective_from for v in schedule.versions] == [NOV_1, NOV_15]
    assert schedule.versions[0].cached_input_per_million == 0.1


def test_cached_input_may_not_cost_more_than_input() -> None:
    """Reserve mode prices a prompt at the input price, so a dearer cached price is refused at load."""
    with pytest.raises(ValidationError, match="must not exceed"):
        ModelConfig.model_validate(
            {
                "name": "m",
                "backends": ["http://b"],
                "prices": [
                    {"effective_from": "2026-11-01", "input_per_million": 1, "cached_input_per_million": 2}
                ],
            }
        )


def test_only_cost_limits_take_fractions() -> None:
    """`limit: 0.25` is a quarter of the currency for a cost limit and an error for a token limit."""
    assert LimitConfig.model_validate({"limit": 0.25, "unit": "cost", "window": "month"}).limit == 0.25
    with pytest.raises(ValidationError, match="whole number"):
        LimitConfig.model_validate({"limit": 2.5, "unit": "tokens", "window": "1h"})


def _limiter(clock: FakeClock, *, reserve: bool, heard: list[CounterReading] | None = None) -> Limiter:
    tier = TierConfig.model_validate(
        {
            "limits": [
                {"limit": 100, "unit": "requests", "window": "1h"},
                {"limit": 0.01, "unit": "cost", "window": "month"},  # one cent: 10,000 micro-units
            ],
            "reserve": reserve,
        }
    )
    observer = heard.extend if heard is not None else None
    return Limiter(InMemoryLimitStorage(), rule_book({"paid": tier}, {}), clock, observer=observer)


PRICE = PriceVersion(NOV_1, input_per_million=10.0, output_per_million=30.0)  # 10 and 30 micro-units


def test_a_cost_budget_charges_after_the_answer_and_refuses_once_spent() -> None:
    """Without reserve mode a request passes while money is left and is charged its price; once the
    budget is spent the 429 says so in money, and the headers report what remains in the currency."""
    clock = FakeClock(start=NOV_15)
    limiter = _limiter(clock, reserve=False)

    async def scenario() -> None:
        admission = await limiter.admit("alice", "paid", "m")
        charge = TokenCharge.of(100, 200, 1.0, PRICE)
        assert charge.cost == 100 * 10 + 200 * 30 == 7000
        values = await limiter.settle(admission, charge)
        headers = dict(rate_limit_headers(admission.counters, values, consumed=charge))
        assert headers["x-ratelimit-limit-cost"] == "0.010000"
        assert headers["x-ratelimit-remaining-cost"] == "0.003000"
        assert headers["x-ratelimit-consumed-cost"] == "0.007000"
        assert "x-ratelimit-limit-tokens" not in headers  # a cost window is not a token window
        admission = await limiter.admit("alice", "paid", "m")  # $0.003 left: admitted
        await limiter.settle(admission, charge)  # overshoots: charged after the answer
        with pytest.raises(RateLimitError) as refused:
            await limiter.admit("alice", "paid", "m")
        message = refused.value.message
        assert message.startswith("Cost limit reached for user 'alice' on the 'paid' tier: $0.00 remain of")
        assert "the $0.01 budget per month" in message

    asyncio.run(scenario())


def test_reserve_mode_reserves_the_worst_case_in_money_and_names_the_numbers() -> None:
    """A reserving tier holds prompt and output cap at the price: what does not fit is clamped to the
    largest output that does, and when even the smallest answer does not fit the 429 names the money."""
    clock = FakeClock(start=NOV_15)
    limiter = _limiter(clock, reserve=True)

    async def scenario() -> None:
        # 100 prompt tokens (1,000 micro-units) + 200 output (6,000): 7,000 of 10,000 fit.
        admission = await limiter.reserve(
            "alice", "paid", "m", prompt=100, output_cap=200, choices=1, multiplier=1.0, price=PRICE
        )
        assert admission.reserved is not None
        assert admission.reserved.cost == 7000
        # 3,000 left: 100 prompt tokens (1,000) leave room for 66 output tokens (1,980).
        clamped = await limiter.reserve(
            "alice", "paid", "m", prompt=100, output_cap=200, choices=1, multiplier=1.0, price=PRICE
        )
        assert clamped.output_cap == 66
        with pytest.raises(RateLimitError) as refused:
            await limiter.reserve(
                "alice", "paid", "m", prompt=100, output_cap=200, choices=1, multiplier=1.0, price=PRICE
            )
        message = refused.value.message
        assert "this request needs up to $0.007" in message
        assert "remain of the $0.01 budget per month" in message
        assert "$0.00002 remain" in message  # 10,000 - 7,000 - 2,980 micro-units

    asyncio.run(scenario())


def test_budget_alerts_hear_cost_budgets_in_micro_units() -> None:
    """The limiter's hook reports a cost budget like any other (unit `cost`, limit and use in
    micro-units), so the alert thresholds cross at the right spend: 50 % at half a cent."""
    clock = FakeClock(start=NOV_15)
    heard: list[CounterReading] = []
    limiter = _limiter(clock, reserve=False, heard=heard)

    async def scenario() -> Sequence[CounterReading]:
        admission = await limiter.admit("alice", "paid", "m")
        heard.clear()
        await limiter.settle(admission, TokenCharge.of(200, 100, 1.0, PRICE))  # 2,000 + 3,000 = 5,000
        return list(heard)

    (reading,) = asyncio.run(scenario())
    assert (reading.unit, reading.limit, reading.used, reading.window) == ("cost", 10_000, 5000, "month")
    assert reading.limit_key == "cost/month/*"
    assert crossed_thresholds(0, reading.used, reading.limit, DEFAULT_THRESHOLDS) == [50]
