"""The limits policy: admit a request against every window of its user's tier, then charge its usage.

It takes identifiers and numbers (user, tier, model, token counts), never request objects, and reaches
its counters only through a ``LimitStorage``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from maas_gateway.errors import RateLimitError
from maas_gateway.limits.headers import rate_limit_headers
from maas_gateway.limits.rules import CounterRef, LimitRule, RuleBook
from maas_gateway.limits.sliding import carried_over, sliding_retry_after
from maas_gateway.limits.storage import AdmitResult, Check, LimitStorage

__all__ = ["Admission", "Limiter", "TokenCharge"]

# Counters outlive their window a little so a late charge still finds them.
_TTL_GRACE = 5.0


@dataclass(slots=True)  # per request: a frozen dataclass costs 4x as much to build
class TokenCharge:
    """Tokens to charge, already multiplied by the model's multiplier."""

    prompt: int
    completion: int

    @property
    def total(self) -> int:
        return self.prompt + self.completion

    @classmethod
    def of(cls, prompt_tokens: int, completion_tokens: int, multiplier: float) -> TokenCharge:
        # Round the whole up once, then split, so prompt + completion == ceil(total * multiplier).
        total = math.ceil((prompt_tokens + completion_tokens) * multiplier - 1e-9)
        prompt = min(total, math.ceil(prompt_tokens * multiplier - 1e-9))
        return cls(prompt, total - prompt)

    def amount(self, rule: LimitRule) -> int:
        if rule.unit == "prompt_tokens":
            return self.prompt
        if rule.unit == "completion_tokens":
            return self.completion
        return self.total


@dataclass(slots=True)  # per request: a frozen dataclass costs 4x as much to build
class Admission:
    user: str
    model: str
    counters: tuple[CounterRef, ...]
    values: tuple[int, ...]  # counter values right after admission (a sliding rule's with carried)
    reserved: TokenCharge | None
    carried: tuple[int, ...] = ()  # sliding rules: what the previous window weighed at admission

    @property
    def limited(self) -> bool:
        return bool(self.counters)


class Limiter:
    def __init__(
        self,
        storage: LimitStorage,
        rules: RuleBook,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.storage = storage
        self.rules = rules
        self._clock = clock

    def reserve_budget(self, user: str, tier: str) -> int | None:
        """Output tokens to reserve when a request sets no ``max_tokens``; ``None`` if not reserving."""
        policy = self.rules.policy(user, tier)
        return policy.reserve_default_max_tokens if policy.reserve else None

    async def admit(
        self,
        user: str,
        tier: str,
        model: str,
        *,
        worst_case: TokenCharge | None = None,
    ) -> Admission:
        """Count the request in every request window and check every token window.

        ``worst_case`` is the most the request can cost; it is reserved when the tier reserves.
        Raises ``RateLimitError`` naming the first limit that is reached; nothing is counted then.
        """
        policy = self.rules.policy(user, tier)
        now = self._clock()
        counters = tuple(rule.counter(user, model, now) for rule in policy.rules if rule.applies_to(model))
        reserved = worst_case if policy.reserve else None
        checks = [_check(counter, reserved, now) for counter in counters]
        result = await self.storage.admit(checks, now)
        if not result.admitted:
            assert result.failed is not None
            raise self._rejection(user, tier, counters, result, checks[result.failed].cost, now)
        carried: tuple[int, ...] = ()
        if result.previous:
            carried = tuple(
                carried_over(count, counter.weight)
                for count, counter in zip(result.previous, counters, strict=True)
            )
        return Admission(user, model, counters, result.values, reserved, carried)

    async def settle(self, admission: Admission, charge: TokenCharge) -> tuple[int, ...]:
        """Charge actual usage (replacing any reservation); return the token counters' new values."""
        now = self._clock()
        keys, amounts, ttls, positions = [], [], [], []
        for position, counter in enumerate(admission.counters):
            rule = counter.rule
            if rule.counts_requests:
                continue
            actual = charge.amount(rule)
            same_window = rule.window_index(now) == counter.window_index
            if same_window and admission.reserved is not None:
                amount = actual - admission.reserved.amount(rule)
            else:
                amount = actual  # a reservation in a window that has ended has gone with it
            if amount == 0 and same_window:
                continue
            current = counter if same_window else rule.counter(admission.user, admission.model, now)
            keys.append(current.key)
            amounts.append(amount)
            ttls.append(current.expires_at - now + _TTL_GRACE)
            positions.append(position)
        values = list(admission.values)
        if keys:
            new_values = await self.storage.add(keys, amounts, ttls, now)
            carried = admission.carried
            for position, value in zip(positions, new_values, strict=True):
                values[position] = value + (carried[position] if carried else 0)
        return tuple(values)

    async def refund(self, admission: Admission) -> None:
        """Give back all that admission took: the request in every request window and any reservation,
        for a request that failed at the gateway or a backend. Windows that have ended since are left
        alone: what was counted in them went with them."""
        now = self._clock()
        keys, amounts, ttls = [], [], []
        for counter in admission.counters:
            rule = counter.rule
            if rule.window_index(now) != counter.window_index:
                continue
            if rule.counts_requests:
                amount = 1
            elif admission.reserved is not None:
                amount = admission.reserved.amount(rule)
            else:
                continue
            if amount:
                keys.append(counter.key)
                amounts.append(-amount)
                ttls.append(counter.expires_at - now + _TTL_GRACE)
        if keys:
            await self.storage.add(keys, amounts, ttls, now)

    def _rejection(
        self,
        user: str,
        tier: str,
        counters: Sequence[CounterRef],
        result: AdmitResult,
        cost: int,
        now: float,
    ) -> RateLimitError:
        assert result.failed is not None
        counter = counters[result.failed]
        rule = counter.rule
        wait = counter.reset_in
        if counter.previous_key is not None:
            previous = result.previous[result.failed]
            start, end = rule.span.bounds(now)
            wait = sliding_retry_after(
                current=result.values[result.failed] - carried_over(previous, counter.weight),
                previous=previous,
                needed=max(cost, 1),
                limit=rule.limit,
                now=now,
                start=start,
                end=end,
                next_end=rule.span.next_end(now),
            )
        retry = max(1, math.ceil(wait))
        what = "Request" if rule.counts_requests else "Token"
        message = (
            f"{what} limit reached for user '{user}' on the '{tier}' tier: "
            f"{rule.describe()}. Try again in {retry} seconds."
        )
        headers = rate_limit_headers(counters, result.values, consumed=0)
        return RateLimitError(message, retry_after_seconds=retry, headers=dict(headers))


def _check(counter: CounterRef, reserved: TokenCharge | None, now: float) -> Check:
    ttl = counter.expires_at - now + _TTL_GRACE
    rule = counter.rule
    if rule.counts_requests:
        cost, must_fit = 1, True
    elif reserved is not None:
        cost, must_fit = reserved.amount(rule), True
    else:
        cost, must_fit = 0, False
    return Check(counter.key, rule.limit, cost, must_fit, ttl, counter.previous_key, counter.weight)
