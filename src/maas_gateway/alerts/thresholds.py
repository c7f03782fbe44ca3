"""Which alert thresholds a budget's usage has crossed, and which thresholds apply to which budget.

Pure policy: numbers and names in, numbers out. A threshold is a whole percentage of the limit; usage
reaches it when ``used * 100 >= threshold * limit`` (integers, so 80 % of 1,000 is exactly 800).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ThresholdOverride",
    "ThresholdPolicy",
    "crossed_thresholds",
    "next_threshold_usage",
]

DEFAULT_THRESHOLDS = (50, 80, 90, 100)


def _reached(used: int, limit: int, threshold: int) -> bool:
    return used * 100 >= threshold * limit


def crossed_thresholds(before: int, after: int, limit: int, thresholds: Sequence[int]) -> list[int]:
    """The thresholds (percent of ``limit``) that usage reached going from ``before`` to ``after``,
    in ascending order: reached at ``after`` and not at ``before``. Nothing when usage went down."""
    if limit <= 0 or after <= before:
        return []
    return sorted(
        threshold
        for threshold in set(thresholds)
        if _reached(after, limit, threshold) and not _reached(before, limit, threshold)
    )


def next_threshold_usage(used: int, limit: int, thresholds: Sequence[int]) -> float:
    """The least usage above ``used`` that reaches a threshold not yet reached; infinity if none is left."""
    upcoming = [
        -(-threshold * limit // 100)  # the least whole usage with usage * 100 >= threshold * limit
        for threshold in thresholds
        if not _reached(used, limit, threshold)
    ]
    return min(upcoming, default=math.inf)


@dataclass(frozen=True, slots=True)
class ThresholdOverride:
    """Thresholds for the budgets of one tier, optionally narrowed to one unit and window (``1h``)."""

    tier: str
    thresholds: tuple[int, ...]
    unit: str | None = None
    window: str | None = None

    def matches(self, tier: str, unit: str, window: str) -> bool:
        return (
            self.tier == tier
            and (self.unit is None or self.unit == unit)
            and (self.window is None or self.window == window)
        )


@dataclass(frozen=True, slots=True)
class ThresholdPolicy:
    """The thresholds of each budget: the first matching override, else the defaults."""

    defaults: tuple[int, ...] = DEFAULT_THRESHOLDS
    overrides: tuple[ThresholdOverride, ...] = ()

    def thresholds(self, tier: str, unit: str, window: str) -> tuple[int, ...]:
        for override in self.overrides:
            if override.matches(tier, unit, window):
                return override.thresholds
        return self.defaults
