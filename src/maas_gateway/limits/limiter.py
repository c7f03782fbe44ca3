"""The limits policy: admit a request against every window of its user's tier, then charge its usage.

It takes identifiers and numbers (user, tier, model, token counts), never request objects, and reaches
its counters only through a ``LimitStorage``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from maas_gateway.limits.charge import TokenCharge
from maas_gateway.limits.readings import UsageObserver, reading
from maas_gateway.limits.refusals import refusal, too_big
from maas_gateway.limits.reservation import largest_fitting_output, worst_case
from maas_gateway.limits.rules import CounterRef, RuleBook, TierPolicy
from maas_gateway.limits.sliding import carried_over
from maas_gateway.limits.storage import AdmitResult, Check, LimitStorage
from maas_gateway.pricing import PriceVersion

__all__ = ["Admission", "Limiter"]

# Counters outlive their window a little so a late charge still finds them.
_TTL_GRACE = 5.0
# Reserve mode lowers a request's output to what a refusal found left; when others took that meanwhile,
# it tries again with what is left then, this many times in all.
_RESERVE_ATTEMPTS = 3


@dataclass(slots=True)  # per request: a frozen dataclass costs 4x as much to build
class Admission:
    user: str
    tier: str
    model: str
    counters: tuple[CounterRef, ...]
    values: tuple[int, ...]  # counter values right after admission (a sliding rule's with carried)
    reserved: TokenCharge | None
    carried: tuple[int, ...] = ()  # sliding rules: what the previous window weighed at admission
    output_cap: int | None = None  # reserve mode: the output cap the reservation holds, maybe lowered

    @property
    def limited(self) -> bool:
        return bool(self.counters)


class Limiter:
    def __init__(
        self,
        storage: LimitStorage,
        rules: RuleBook,
        clock: Callable[[], float] = time.time,
        observer: UsageObserver | None = None,
    ) -> None:
        """``observer`` hears every counter's value once a request (request limits) or a settled charge
        (token limits) is counted in it (``limits/readings.py``); budget alerts listen there."""
        self.storage = storage
        self.rules = rules
        self._clock = clock
        self._observer = observer

    def reserving(self, user: str, tier: str) -> TierPolicy | None:
        """The user's policy when their tier reserves before forwarding (``reserve``); else ``None``."""
        policy = self.rules.policy(user, tier)
        return policy if policy.reserve else None

    async def admit(
        self,
        user: str,
        tier: str,
        model: str,
        *,
        worst_case: TokenCharge | None = None,
        team: str | None = None,
        key_id: str | None = None,
    ) -> Admission:
        """Count the request in every request window and check every token window, of every scope that
        applies (the user's, their team's, their key's, the tier's, everyone's) in one atomic step.

        ``worst_case`` is the most the request can cost; it is reserved when the tier reserves.
        Raises ``RateLimitError`` naming the first limit that is reached; nothing is counted then.
        """
        policy, counted = self.rules.counted(user, tier, model, team=team, key_id=key_id)
        now = self._clock()
        counters = tuple(rule.counter(subject, model, now) for rule, subject in counted)
        reserved = worst_case if policy.reserve else None
        checks = [_check(counter, reserved, now) for counter in counters]
        result = await self.storage.admit(checks, now)
        if not result.admitted:
            assert result.failed is not None
            cost = checks[result.failed].cost
            raise refusal(user, tier, counters, result, failed=result.failed, needed=cost, now=now)
        carried = _carried(result, counters) if result.previous else ()
        if self._observer is not None:
            self._requests_counted(user, tier, model, counters, result.values)
        return Admission(user, tier, model, counters, result.values, reserved, carried)

    async def reserve(
        self,
        user: str,
        tier: str,
        model: str,
        *,
        prompt: int,
        output_cap: int,
        choices: int,
        multiplier: float,
        price: PriceVersion | None = None,
        team: str | None = None,
        key_id: str | None = None,
    ) -> Admission:
        """Admit a request of a reserving tier, holding its worst case: the ``prompt`` bound, and
        ``output_cap`` tokens for each of ``choices`` answers, times the model's ``multiplier`` (and in
        money at ``price``, for cost limits).

        When that does not fit but a cap of at least the policy's ``min_clamped_tokens`` does, the
        request is admitted with the largest cap that fits (``Admission.output_cap``), for the caller to
        forward instead of its own. Otherwise raises ``RateLimitError`` naming the numbers. ``output_cap``
        0 (embeddings) is never lowered.
        """
        policy, counted = self.rules.counted(user, tier, model, team=team, key_id=key_id)
        now = self._clock()
        counters = tuple(rule.counter(subject, model, now) for rule, subject in counted)
        cap = output_cap
        for _ in range(_RESERVE_ATTEMPTS):
            reserved = worst_case(prompt, cap, choices, multiplier, price)
            checks = [_check(counter, reserved, now) for counter in counters]
            result = await self.storage.admit(checks, now)
            if result.admitted:
                carried = _carried(result, counters)
                if self._observer is not None:
                    self._requests_counted(user, tier, model, counters, result.values)
                return Admission(user, tier, model, counters, result.values, reserved, carried, cap)
            assert result.failed is not None
            failed = result.failed
            if counters[failed].rule.counts_requests:
                raise refusal(user, tier, counters, result, failed=failed, needed=1, now=now)
            room = [
                (counter.rule.unit, counter.rule.limit - value)
                for counter, value in zip(counters, result.values, strict=True)
                if not counter.rule.counts_requests
            ]
            fitting = largest_fitting_output(
                prompt=prompt,
                choices=choices,
                multiplier=multiplier,
                room=room,
                at_most=cap - 1,
                price=price,
            )
            if output_cap == 0 or fitting < policy.min_clamped_tokens:
                least_cap = min(policy.min_clamped_tokens, output_cap)
                least = worst_case(prompt, least_cap, choices, multiplier, price) if output_cap else None
                needs = worst_case(prompt, output_cap, choices, multiplier, price)
                binding, detail = too_big(counters, result.values, needs=needs, least=least, fallback=failed)
                needed = (least or needs).in_unit(counters[binding].rule.unit)
                raise refusal(
                    user, tier, counters, result, failed=binding, needed=needed, now=now, detail=detail
                )
            cap = fitting  # others may take the room meanwhile: try again with what is left then
        raise refusal(user, tier, counters, result, failed=failed, needed=checks[failed].cost, now=now)

    async def settle(self, admission: Admission, charge: TokenCharge) -> tuple[int, ...]:
        """Charge actual usage (replacing any reservation); return the token counters' new values."""
        now = self._clock()
        keys, amounts, ttls, positions = [], [], [], []
        settled: list[tuple[int, CounterRef]] = []  # each token counter charged, in the window now
        for position, counter in enumerate(admission.counters):
            rule = counter.rule
            if rule.counts_requests:
                continue
            actual = charge.in_unit(rule.unit)
            same_window = rule.window_index(now) == counter.window_index
            if same_window and admission.reserved is not None:
                amount = actual - admission.reserved.in_unit(rule.unit)
            else:
                amount = actual  # a reservation in a window that has ended has gone with it
            current = counter if same_window else rule.counter(counter.subject, admission.model, now)
            settled.append((position, current))
            if amount == 0 and same_window:
                continue
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
        if self._observer is not None and settled:
            user, tier, model = admission.user, admission.tier, admission.model
            self._observer([reading(user, tier, model, current, values[at]) for at, current in settled])
        return tuple(values)

    def _requests_counted(
        self, user: str, tier: str, model: str, counters: Sequence[CounterRef], values: Sequence[int]
    ) -> None:
        assert self._observer is not None
        counted = [
            reading(user, tier, model, counter, value)
            for counter, value in zip(counters, values, strict=True)
            if counter.rule.counts_requests
        ]
        if counted:
            self._observer(counted)

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
                amount = admission.reserved.in_unit(rule.unit)
            else:
                continue
            if amount:
                keys.append(counter.key)
                amounts.append(-amount)
                ttls.append(counter.expires_at - now + _TTL_GRACE)
        if keys:
            await self.storage.add(keys, amounts, ttls, now)


def _carried(result: AdmitResult, counters: Sequence[CounterRef]) -> tuple[int, ...]:
    if not result.previous:
        return ()
    return tuple(
        carried_over(count, counter.weight) for count, counter in zip(result.previous, counters, strict=True)
    )


def _check(counter: CounterRef, reserved: TokenCharge | None, now: float) -> Check:
    ttl = counter.expires_at - now + _TTL_GRACE
    rule = counter.rule
    if rule.counts_requests:
        cost, must_fit = 1, True
    elif reserved is not None:
        cost, must_fit = reserved.in_unit(rule.unit), True
    else:
        cost, must_fit = 0, False
    return Check(counter.key, rule.limit, cost, must_fit, ttl, counter.previous_key, counter.weight)
