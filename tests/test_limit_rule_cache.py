"""What the request path works out once per configuration instead of per request, proven equal to working
it out every time, and replaced by a reload.

``RuleBook.counted`` remembers, per (user, tier, model, team, key), the policy and the rules a request
counts in; ``rate_limit_headers`` picks the tightest windows in one pass. Both are checked against the
plain computation; a reload that changes a tier's limits takes effect from the very next request, even
for a caller whose rules were remembered.
"""

from __future__ import annotations

import asyncio
import copy
import math
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from maas_gateway.application import Application
from maas_gateway.config import demo_config_text, parse_config
from maas_gateway.errors import PermissionDeniedError
from maas_gateway.limits import LimitRule, RuleBook, TierPolicy, TokenCharge, rate_limit_headers
from maas_gateway.limits.rules import CounterRef
from maas_gateway.upstream import InMemoryTransport, MemoryAnswer, UpstreamRequest
from tests.support.memory_backend import memory_chat_answer

NOW = 1_764_547_200.0  # 2025-12-01T00:00:00Z
CHAT = {"model": "simulator-model", "messages": [{"role": "user", "content": "Hello"}]}


def _book() -> RuleBook:
    every = (
        LimitRule(5, "requests", 60.0),
        LimitRule(100, "tokens", 3600.0, model="alpha"),
        LimitRule(50, "tokens", 60.0, per_model=True, scope="tier"),
        LimitRule(9, "cost", "day", scope="global"),
    )
    override = (LimitRule(7, "requests", 60.0), LimitRule(70, "completion_tokens", 60.0, model="beta"))
    return RuleBook(
        {"free": TierPolicy(every, reserve=False, reserve_default_max_tokens=256)},
        {"carol": {"free": TierPolicy(override, reserve=True, reserve_default_max_tokens=256)}},
        teams={"research": (LimitRule(30, "tokens", 60.0, scope="team"),)},
        keys={"key_1": (LimitRule(3, "requests", 60.0, scope="key"),)},
    )


def _plain(
    book: RuleBook, user: str, tier: str, model: str, team: str | None, key_id: str | None
) -> tuple[TierPolicy, tuple[tuple[LimitRule, str], ...]]:
    policy = book.policy(user, tier)
    pairs = book.applicable(policy, user=user, tier=tier, team=team, key_id=key_id)
    return policy, tuple((rule, subject) for rule, subject in pairs if rule.applies_to(model))


@pytest.mark.parametrize("user", ["alice", "carol"])
@pytest.mark.parametrize("model", ["alpha", "beta"])
@pytest.mark.parametrize("team", [None, "research", "sales"])
@pytest.mark.parametrize("key_id", [None, "key_1", "key_2"])
def test_remembered_rules_are_the_applicable_rules_narrowed_to_the_model(
    user: str, model: str, team: str | None, key_id: str | None
) -> None:
    """Asked twice (worked out, then remembered), the book answers what the policy and ``applicable``
    give for that model: the user's override or the tier's rules, the team's and the key's."""
    book = _book()
    expected = _plain(book, user, "free", model, team, key_id)
    assert book.counted(user, "free", model, team=team, key_id=key_id) == expected
    assert book.counted(user, "free", model, team=team, key_id=key_id) == expected
    assert expected[1], "every combination counts in at least the request window"


def test_an_unknown_tier_is_refused_every_time() -> None:
    """A tier the book does not know is refused on every request: a refusal is never remembered as an
    answer."""
    book = _book()
    for _ in range(2):
        with pytest.raises(PermissionDeniedError, match="not configured"):
            book.counted("alice", "gold", "alpha", team=None, key_id=None)


def test_answers_stay_right_after_the_cache_starts_over() -> None:
    """More callers than the book remembers: the early callers' rules are worked out again, the same."""
    book = _book()
    first = book.counted("carol", "free", "beta", team="research", key_id="key_1")
    for number in range(5000):
        book.counted(f"user{number}", "free", "alpha", team=None, key_id=None)
    assert book.counted("carol", "free", "beta", team="research", key_id="key_1") == first
    assert first == _plain(book, "carol", "free", "beta", "research", "key_1")


def _config(request_limit: int) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(yaml.safe_load(demo_config_text()))
    data["server"]["access_log"] = False
    # A day-long window: the test's requests, a few milliseconds apart, share it.
    data["tiers"]["free"]["limits"] = [{"limit": request_limit, "unit": "requests", "window": "1d"}]
    return data


def test_a_reload_changes_the_limits_of_a_caller_whose_rules_were_remembered() -> None:
    """A caller's rules are remembered after their first request; a reload to a limit of 1 refuses their
    next request, and a reload back to 3 admits the one after, with the new limit in its headers."""

    async def answer(request: UpstreamRequest) -> MemoryAnswer:
        return memory_chat_answer()

    application = Application(parse_config(_config(5)), transport=InMemoryTransport(answer))
    key = {"Authorization": "Bearer freeuser1_key"}

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=application.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            first = await client.post("/v1/chat/completions", json=CHAT, headers=key)
            assert application.apply(parse_config(_config(1))) == []
            refused = await client.post("/v1/chat/completions", json=CHAT, headers=key)
            assert application.apply(parse_config(_config(3))) == []
            admitted = await client.post("/v1/chat/completions", json=CHAT, headers=key)
        assert first.status_code == 200
        assert first.headers["x-ratelimit-limit-requests"] == "5"
        assert refused.status_code == 429
        assert admitted.status_code == 200
        assert admitted.headers["x-ratelimit-limit-requests"] == "3"
        assert admitted.headers["x-ratelimit-remaining-requests"] == "1"  # the refused one was not counted

    asyncio.run(scenario())


def _reference_headers(
    counters: list[CounterRef], values: list[int], consumed: TokenCharge | None
) -> list[tuple[str, str]]:
    """The headers as the documentation states them, computed the plain way: for each kind, the first
    window with the fewest units left; total-token windows before input or output ones."""

    def tightest(kinds: tuple[str, ...]) -> tuple[CounterRef, int] | None:
        group = [(c, v) for c, v in zip(counters, values, strict=True) if c.rule.unit in kinds]
        return min(group, key=lambda pair: pair[0].rule.limit - pair[1]) if group else None

    def money(micros: int) -> str:
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    headers: list[tuple[str, str]] = []
    tokens = tightest(("tokens",)) or tightest(("prompt_tokens", "completion_tokens"))
    for kind, found, shown in (
        ("requests", tightest(("requests",)), str),
        ("tokens", tokens, str),
        ("cost", tightest(("cost",)), money),
    ):
        if found is None:
            continue
        counter, value = found
        headers += [
            (f"x-ratelimit-limit-{kind}", shown(counter.rule.limit)),
            (f"x-ratelimit-remaining-{kind}", shown(max(0, counter.rule.limit - value))),
            (f"x-ratelimit-reset-{kind}", f"{math.ceil(counter.reset_in)}s"),
        ]
        if consumed is not None and kind == "tokens":
            headers.append(("x-ratelimit-consumed-tokens", str(consumed.in_unit(counter.rule.unit))))
        if consumed is not None and kind == "cost":
            headers.append(("x-ratelimit-consumed-cost", money(consumed.cost)))
    return headers


_WINDOW = st.tuples(
    st.sampled_from(["requests", "tokens", "prompt_tokens", "completion_tokens", "cost"]),
    st.integers(1, 50),  # the limit
    st.integers(0, 60),  # the counter's value: at, under or over the limit
    st.sampled_from([60.0, 3600.0, 86400.0]),
)


@settings(max_examples=300, deadline=None)
@given(
    windows=st.lists(_WINDOW, max_size=8),
    consumed=st.none()
    | st.builds(TokenCharge, st.integers(0, 99), st.integers(0, 99), st.integers(0, 10**7)),
)
def test_the_headers_name_the_tightest_window_of_each_kind(
    windows: list[tuple[Any, int, int, float]], consumed: TokenCharge | None
) -> None:
    """Any mix of windows, limits and values (ties included): the headers are the plain computation's,
    in the same order."""
    counters = [
        LimitRule(limit, unit, seconds).counter("alice", "alpha", NOW + 7)
        for unit, limit, _, seconds in windows
    ]
    values = [value for _, _, value, _ in windows]
    assert rate_limit_headers(counters, values, consumed=consumed) == _reference_headers(
        counters, values, consumed
    )
