"""The 429 a limit answers with: a whole-sentence message naming the limit (and, in reserve mode, the
numbers), ``Retry-After`` when that limit lets the request through again, and the ``x-ratelimit-*``
headers as found."""

from __future__ import annotations

import math
from collections.abc import Sequence

from maas_gateway.errors import RateLimitError
from maas_gateway.limits.charge import TokenCharge
from maas_gateway.limits.headers import rate_limit_headers
from maas_gateway.limits.rules import CounterRef, LimitRule
from maas_gateway.limits.sliding import carried_over, sliding_retry_after
from maas_gateway.limits.storage import AdmitResult

__all__ = ["refusal", "too_big"]


def refusal(
    user: str,
    tier: str,
    counters: Sequence[CounterRef],
    result: AdmitResult,
    *,
    failed: int,
    needed: int,
    now: float,
    detail: str | None = None,
) -> RateLimitError:
    """The refusal by ``counters[failed]``, for a request that needed ``needed`` of its units."""
    counter = counters[failed]
    rule = counter.rule
    wait = counter.reset_in
    if counter.previous_key is not None:
        previous = result.previous[failed]
        start, end = rule.span.bounds(now)
        wait = sliding_retry_after(
            current=result.values[failed] - carried_over(previous, counter.weight),
            previous=previous,
            needed=max(needed, 1),
            limit=rule.limit,
            now=now,
            start=start,
            end=end,
            next_end=rule.span.next_end(now),
        )
    retry = max(1, math.ceil(wait))
    what = "Request" if rule.counts_requests else ("Cost" if rule.counts_money else "Token")
    whose = f" of {counter.owner}" if counter.owner else ""  # a team's or a key's limit says whose
    message = (
        f"{what} limit{whose} reached for user '{user}' on the '{tier}' tier: "
        f"{detail or _limit_and_left(rule, result.values[failed], needed)}. Try again in {retry} seconds."
    )
    headers = rate_limit_headers(counters, result.values, consumed=TokenCharge(0, 0))
    return RateLimitError(message, retry_after_seconds=retry, headers=dict(headers))


def too_big(
    counters: Sequence[CounterRef],
    values: Sequence[int],
    *,
    needs: TokenCharge,
    least: TokenCharge | None,
    fallback: int,
) -> tuple[int, str]:
    """The token limit that leaves too little for even the smallest useful answer (``least``; ``None``
    when the output cannot be lowered), and a sentence naming the numbers."""
    smallest = least or needs
    binding = fallback
    for position, (counter, value) in enumerate(zip(counters, values, strict=True)):
        if (
            not counter.rule.counts_requests
            and smallest.in_unit(counter.rule.unit) > counter.rule.limit - value
        ):
            binding = position
            break
    rule = counters[binding].rule
    left = max(0, rule.limit - values[binding])
    lowered = ""
    if least is not None:
        smallest_cost = _number(rule, least.in_unit(rule.unit))
        lowered = f", and at least {smallest_cost} with its output lowered as far as allowed"
    detail = (
        f"this request needs up to {rule.amount(needs.in_unit(rule.unit))}{lowered}, but "
        f"{_number(rule, left)} remain of {rule.describe()}"
    )
    return binding, detail


def _number(rule: LimitRule, units: int) -> str:
    """``1,034`` (the unit said once already), or ``$0.0040``: money always shows its currency."""
    return rule.amount(units) if rule.counts_money else f"{units:,}"


def _limit_and_left(rule: LimitRule, value: int, needed: int) -> str:
    """The limit; for a cost limit also what the request needs and what remains, as money is what a
    reader wants to see (``this request needs up to $0.0123 but $0.0040 remain of the $5.00 budget``)."""
    if not rule.counts_money:
        return rule.describe()
    left = max(0, rule.limit - value)
    if needed <= 0:  # charged after the answer: refused once nothing is left
        return f"{rule.amount(left)} remain of {rule.describe()}"
    needs = rule.amount(needed)
    return f"this request needs up to {needs} but {rule.amount(left)} remain of {rule.describe()}"
