"""What the portal's overview reads of a user's limits: the very counters the limiter admits against."""

from __future__ import annotations

import asyncio

from maas_gateway.limits import InMemoryLimitStorage, Limiter, LimitRule, RuleBook, TierPolicy
from maas_gateway.portal.quota import window_uses

NOW = 1_800_000_000.0


def _limiter() -> Limiter:
    rules = (
        LimitRule(limit=5, unit="requests", window=60.0),  # each user's own
        LimitRule(limit=100, unit="requests", window=3600.0, scope="tier"),  # the whole tier's together
    )
    policy = TierPolicy(rules=rules, reserve=False, reserve_default_max_tokens=64)
    return Limiter(InMemoryLimitStorage(), RuleBook({"free": policy}), clock=lambda: NOW)


def test_a_tier_wide_limit_shows_every_users_requests_and_a_users_own_only_theirs() -> None:
    """After ada's two calls, bob's overview shows his own window untouched and the tier's shared
    window down by two, as his next request will find them."""

    async def scenario() -> list[tuple[str, int]]:
        limiter = _limiter()
        for _ in range(2):
            await limiter.admit("ada", "free", "m")
        uses = await window_uses(limiter, "bob", "free", ["m"], NOW)
        return [(use.description, use.remaining) for use in uses]

    shown = asyncio.run(scenario())
    assert shown[0] == ("5 requests per 1m", 5)
    assert shown[1][1] == 98
    assert "tier" in shown[1][0]
