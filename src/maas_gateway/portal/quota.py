"""What remains of a user's limits now, window by window, read without counting anything.

It reads the same counters the limiter admits against (``LimitRule.counter``), through the storage's
read-only ``peek``, so the portal shows exactly what the next request will meet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from maas_gateway.errors import GatewayError
from maas_gateway.limits import Limiter
from maas_gateway.limits.rules import CounterRef

__all__ = ["WindowUse", "window_uses"]


@dataclass(frozen=True, slots=True)
class WindowUse:
    description: str  # "200 tokens per 1m", as error messages name the limit
    limit: int
    used: int
    resets_in: float  # seconds until the window ends
    model: str | None  # the model a per-model counter is for

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


async def window_uses(
    limiter: Limiter, user: str, tier: str, models: Sequence[str], now: float
) -> list[WindowUse]:
    """Every window of ``user``'s limits in ``tier`` (per-model limits once for each of ``models``)."""
    try:
        policy = limiter.rules.policy(user, tier)
    except GatewayError:
        return []  # a tier without a policy admits nothing; the page says the tier is unknown
    counters: list[tuple[CounterRef, str | None]] = []
    # Each rule's counter owner as the limiter names it: the user, or the tier or everyone for rules of
    # a wider scope (a team's and a key's rules belong to keys of that team, not to the user as such).
    applicable = limiter.rules.applicable(policy, user=user, tier=tier, team=None, key_id=None)
    for rule, subject in applicable:
        if rule.per_model:
            counters += [(rule.counter(subject, model, now), model) for model in models]
        else:
            counters.append((rule.counter(subject, rule.model or "*", now), rule.model))
    values = await limiter.storage.peek([counter.key for counter, _ in counters], now)
    return [
        WindowUse(counter.rule.describe(), counter.rule.limit, value, counter.reset_in, model)
        for (counter, model), value in zip(counters, values, strict=True)
    ]
