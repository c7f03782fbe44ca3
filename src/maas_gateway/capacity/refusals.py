"""The answers of a request that gets no slot: 429 on the user's own concurrency, 503 on the model's.

Every answer carries ``Retry-After``: for the model's slots, from how fast they come free in this process
and how many wait before the request (``DrainRate``); for the model's tokens, until the minute ends; for
the user's own allowance, how long a request usually holds a slot.
"""

from __future__ import annotations

import math
from typing import Literal

from maas_gateway.capacity.base import Refusal
from maas_gateway.capacity.drain import DrainRate
from maas_gateway.capacity.keys import minute_ends_in
from maas_gateway.capacity.rules import Demand
from maas_gateway.errors import CapacityExhaustedError, ConcurrencyLimitError, GatewayError

__all__ = ["Ending", "turned_away"]

# Why a request leaves without a slot: its deadline passed, the line was full when it came (or the model
# lets nobody wait), or a request with a better claim took its place in a full line.
Ending = Literal["timeout", "full", "shed"]


def turned_away(
    demand: Demand,
    refusal: Refusal,
    ending: Ending,
    *,
    waited: float,
    ahead: int,
    drain: DrainRate,
    now: float,
) -> GatewayError:
    """The error for a request that got no slot; ``now`` is the wall clock (for the token minute)."""
    model = demand.model
    fallback = demand.queue.timeout
    if refusal == "quota":
        retry = drain.hold_retry_after(fallback)
        waiting = f"; this request waited {_seconds(waited)} for one of them to end" if waited else ""
        return ConcurrencyLimitError(
            f"User '{demand.user}' already has {demand.user_limit} requests in progress, the most they "
            f"may have at once{waiting}. Try again in {retry} seconds.",
            retry_after_seconds=retry,
        )
    if refusal == "budget" and ending != "shed":
        retry = max(1, math.ceil(minute_ends_in(now)))
        return CapacityExhaustedError(
            f"The model '{model}' has used its {demand.tokens_per_minute} tokens for this minute, counted "
            f"for all users together. Try again in {retry} seconds.",
            retry_after_seconds=retry,
        )
    retry = drain.retry_after(ahead, fallback)
    if refusal == "share" and ending == "timeout":
        return CapacityExhaustedError(
            f"The model '{model}' is at capacity for the '{demand.tier}' tier: its requests hold the "
            f"{demand.tier_limit} slots the tier may use at once, and none came free while this request "
            f"waited {_seconds(waited)}. Try again in {retry} seconds.",
            retry_after_seconds=retry,
        )
    if ending == "shed":
        why = (
            "this request's place in line went to a request of a higher tier or of a user with fewer "
            "requests waiting"
        )
    elif ending == "full":
        why = "its line of waiting requests is full" if demand.queue.max_queue else "requests do not wait"
    else:
        why = f"no slot came free while this request waited {_seconds(waited)}"
        if refusal == "outranked":
            why += " (requests of higher tiers go first)"
    return CapacityExhaustedError(
        f"The model '{model}' is at capacity: {why}. Try again in {retry} seconds.",
        retry_after_seconds=retry,
    )


def _seconds(value: float) -> str:
    return f"{value:.1f} seconds"
