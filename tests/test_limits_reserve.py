"""Reserve mode's policy: the prompt bound, the worst case of n and best_of, lowering the output cap to what
remains, and refusals that name the numbers; and x-ratelimit-consumed-tokens in the reported unit."""

from __future__ import annotations

import asyncio
import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maas_gateway.application.policies import rule_book
from maas_gateway.config import LimitUnit, TierConfig
from maas_gateway.errors import InvalidRequestError, RateLimitError
from maas_gateway.limits import InMemoryLimitStorage, Limiter, TokenCharge, rate_limit_headers
from maas_gateway.limits.reservation import largest_fitting_output, prompt_bound, worst_case
from maas_gateway.proxy.schemas import ChatRequest, parse_body
from maas_gateway.tokens import prompt_size
from tests.support.clock import FakeClock

NOW = 1_800_000_000.0


def _limiter(*limits: tuple[int, str], minimum: int = 16) -> Limiter:
    tier = TierConfig.model_validate(
        {"reserve": True, "limits": [{"limit": n, "unit": u, "window": "1h"} for n, u in limits]}
    )
    return Limiter(
        InMemoryLimitStorage(), rule_book({"free": tier}, {}, min_clamped_tokens=minimum), FakeClock(NOW)
    )


def test_n_and_best_of_multiply_the_output_and_not_the_prompt() -> None:
    """Three answers of up to 100 tokens after a 40-token prompt: 340 reserved; best_of counts when larger."""
    assert worst_case(40, 100, 3, 1.0) == TokenCharge(40, 300)
    assert worst_case(40, 100, 1, 2.0).total == 280


def test_the_prompt_bound_counts_tools_and_media_parts() -> None:
    """Tool definitions count twice their compact JSON, tool calls too; each image counts the allowance."""
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    body = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "Hi"}, {"type": "image_url", "image_url": {}}],
            },
            {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "function": {"name": "f"}}]},
        ],
        "tools": [tool],
    }
    size = prompt_size(body)
    assert size.utf8_bytes == 2
    assert size.media_parts == 1
    assert size.structure_bytes > 80  # the tool and the tool call, as JSON
    bound = prompt_bound(
        utf8_bytes=size.utf8_bytes,
        messages=size.messages,
        structure_bytes=size.structure_bytes,
        media_parts=size.media_parts,
        media_part_tokens=1000,
    )
    assert bound == 2 + 16 + 8 * 2 + 2 * size.structure_bytes + 1000


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 500),
    st.integers(1, 4),
    st.sampled_from([1.0, 1.5, 2.0, 0.5]),
    st.lists(
        st.tuples(st.sampled_from(["tokens", "prompt_tokens", "completion_tokens"]), st.integers(-5, 3000)),
        min_size=1,
        max_size=3,
    ),
    st.integers(0, 2000),
)
def test_the_largest_fitting_output_is_the_largest_that_fits(
    prompt: int, choices: int, multiplier: float, room: list[tuple[LimitUnit, int]], at_most: int
) -> None:
    """For any prompt, answers, multiplier and room: the cap returned fits every limit and one more does not
    (or it is the most asked for); -1 when the prompt alone does not fit."""

    def fits(cap: int) -> bool:
        charge = worst_case(prompt, cap, choices, multiplier)
        return all(charge.in_unit(unit) <= left for unit, left in room)

    cap = largest_fitting_output(
        prompt=prompt,
        choices=choices,
        multiplier=multiplier,
        room=room,
        at_most=at_most,
    )
    if not fits(0):
        assert cap == -1
        return
    assert 0 <= cap <= at_most
    assert fits(cap)
    assert cap == at_most or not fits(cap + 1)


def test_a_request_that_does_not_fit_is_lowered_to_what_remains() -> None:
    """300 tokens left, 40 for the prompt and 1,000 asked: admitted with 260, and the 260 are reserved."""
    limiter = _limiter((300, "tokens"))

    async def scenario() -> None:
        admission = await limiter.reserve(
            "u", "free", "m", prompt=40, output_cap=1000, choices=1, multiplier=1.0
        )
        assert admission.output_cap == 260
        assert admission.values == (300,)
        assert admission.reserved == TokenCharge(40, 260)

    asyncio.run(scenario())


def test_answers_share_what_remains() -> None:
    """n=3 with 300 left and a 30-token prompt: each answer gets 90."""
    limiter = _limiter((300, "tokens"))

    async def scenario() -> None:
        admission = await limiter.reserve(
            "u", "free", "m", prompt=30, output_cap=500, choices=3, multiplier=1.0
        )
        assert admission.output_cap == 90

    asyncio.run(scenario())


def test_too_little_left_for_a_useful_answer_is_a_refusal_naming_the_numbers() -> None:
    """With 50 left, a 40-token prompt and a minimum of 16, nothing is admitted, and the message says what the
    request needs, the least it could do with, and what remains."""
    limiter = _limiter((1000, "tokens"))

    async def scenario() -> None:
        first = await limiter.reserve("u", "free", "m", prompt=40, output_cap=910, choices=1, multiplier=1.0)
        assert first.output_cap == 910
        with pytest.raises(RateLimitError) as refusal:
            await limiter.reserve("u", "free", "m", prompt=40, output_cap=994, choices=1, multiplier=1.0)
        message = refusal.value.message
        assert "this request needs up to 1,034 tokens, and at least 56 with its output lowered" in message
        assert "but 50 remain of 1000 tokens per 1h" in message
        assert refusal.value.headers()["x-ratelimit-remaining-tokens"] == "50"
        assert refusal.value.headers()["x-ratelimit-consumed-tokens"] == "0"
        # Nothing was counted by the refusal: 50 still remain for a request that fits them.
        last = await limiter.reserve("u", "free", "m", prompt=10, output_cap=100, choices=1, multiplier=1.0)
        assert last.output_cap == 40

    asyncio.run(scenario())


def test_a_request_asking_for_less_than_the_minimum_is_not_lowered_below_it() -> None:
    """max_tokens 8 with 5 left after the prompt: refused, not cut to 5 (less than the minimum of 16)."""
    limiter = _limiter((100, "tokens"))

    async def scenario() -> None:
        await limiter.reserve("u", "free", "m", prompt=85, output_cap=0, choices=1, multiplier=1.0)
        with pytest.raises(RateLimitError, match="needs up to 18 tokens"):
            await limiter.reserve("u", "free", "m", prompt=10, output_cap=8, choices=1, multiplier=1.0)

    asyncio.run(scenario())


def test_an_embedding_is_never_lowered() -> None:
    """An output cap of 0 (embeddings): admitted whole or refused with its size."""
    limiter = _limiter((100, "tokens"))

    async def scenario() -> None:
        assert (
            await limiter.reserve("u", "free", "m", prompt=90, output_cap=0, choices=1, multiplier=1.0)
        ).output_cap == 0
        with pytest.raises(RateLimitError, match="this request needs up to 20 tokens, but 10 remain"):
            await limiter.reserve("u", "free", "m", prompt=20, output_cap=0, choices=1, multiplier=1.0)

    asyncio.run(scenario())


def test_a_request_limit_refuses_before_any_lowering() -> None:
    """When the request limit is spent, the refusal names it, not the tokens."""
    limiter = _limiter((1, "requests"), (300, "tokens"))

    async def scenario() -> None:
        await limiter.reserve("u", "free", "m", prompt=10, output_cap=10, choices=1, multiplier=1.0)
        with pytest.raises(RateLimitError, match=r"Request limit reached .* 1 requests per 1h"):
            await limiter.reserve("u", "free", "m", prompt=10, output_cap=10, choices=1, multiplier=1.0)

    asyncio.run(scenario())


def test_consumed_tokens_are_reported_in_the_unit_of_the_reported_window() -> None:
    """A tier with only a completion-token window: consumed is the output tokens, so remaining + consumed
    is what remained before the request."""
    limiter = _limiter((100, "completion_tokens"))

    async def scenario() -> None:
        admission = await limiter.reserve(
            "u", "free", "m", prompt=10, output_cap=30, choices=1, multiplier=1.0
        )
        charge = TokenCharge(12, 30)
        values = await limiter.settle(admission, charge)
        headers = dict(rate_limit_headers(admission.counters, values, consumed=charge))
        assert headers["x-ratelimit-consumed-tokens"] == "30"
        assert headers["x-ratelimit-remaining-tokens"] == "70"

    asyncio.run(scenario())


@pytest.mark.parametrize("field", ["n", "best_of"])
def test_answers_must_be_counted_in_positive_integers(field: str) -> None:
    """`n: 0` or `best_of: "3"` is a 400 naming the field: a reservation cannot be taken for it."""
    for value in (0, "3"):
        body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}], field: value})
        with pytest.raises(InvalidRequestError) as refused:
            parse_body(body, ChatRequest)
        assert refused.value.param == field


def test_deeply_nested_tools_are_measured_without_failing() -> None:
    """Tools nested 300 levels deep (more than orjson encodes) are measured by a walk, to the byte of
    their compact JSON."""
    nested: list[object] = []
    inner = nested
    for _ in range(150):  # two levels each: 300
        child: list[object] = []
        inner.append({"k": "é", "n": child})
        inner = child
    body = {"messages": [{"role": "user", "content": "x"}], "tools": nested}
    compact = json.dumps([nested], separators=(",", ":"), ensure_ascii=False).encode()
    assert prompt_size(body).structure_bytes == len(compact)
