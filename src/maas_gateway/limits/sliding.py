"""The sliding-window estimate: the previous window's count, weighted by what is left of the current one.

A ``sliding`` rule keeps the same per-window counters as a fixed one, and admits against

    estimate = current + floor(previous * weight / 1,000,000)

where ``weight`` is the share of the current window still to come, in millionths (1,000,000 at its
start, 0 at its end). It is the two-bucket approximation Cloudflare and Kong use: it assumes the previous
window's units were spread evenly over it. The arithmetic is in integers so that the in-process storage
and the Redis script (Lua, whose numbers are doubles) compute the same estimate to the unit. How far it can
be off is stated in docs/limits.md ("Sliding windows").
"""

from __future__ import annotations

__all__ = ["WEIGHT_SCALE", "carried_over", "remaining_weight", "sliding_retry_after"]

WEIGHT_SCALE = 1_000_000


def remaining_weight(start: float, end: float, now: float) -> int:
    """The share of ``[start, end)`` still to come at ``now``, in millionths."""
    return max(0, min(WEIGHT_SCALE, int((end - now) * WEIGHT_SCALE // (end - start))))


def carried_over(previous: int, weight: int) -> int:
    """What the previous window's count still weighs; nothing if it is nothing (or less, after refunds)."""
    if previous <= 0 or weight <= 0:
        return 0
    return previous * weight // WEIGHT_SCALE


def sliding_retry_after(
    *,
    current: int,
    previous: int,
    needed: int,
    limit: int,
    now: float,
    start: float,
    end: float,
    next_end: float,
) -> float:
    """Seconds from ``now`` until ``needed`` more units fit under a sliding rule, if nobody spends any.

    The previous window's weight falls linearly to nothing at ``end``; after that the current count is
    the previous one and falls in its turn until ``next_end``. A request larger than the limit never
    fits: the answer is then the time until the current window's count has faded too.
    """
    room = limit - needed - current
    if room >= 0 and previous > 0:
        return max(0.0, end - room * (end - start) / previous - now)
    room = limit - needed
    if room < 0:
        return next_end - now
    if current <= 0:
        return end - now
    return max(end, next_end - room * (next_end - end) / current) - now
