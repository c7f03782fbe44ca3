"""How long a sender waits before trying an alert again: exponential, capped, with jitter.

Jitter spreads the retries of alerts that failed together (a webhook that was down for everyone), so the
webhook is not hit by all of them in the same second when it comes back.
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["RetrySchedule"]


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    initial: float
    multiplier: float
    maximum: float
    jitter: float  # each wait is shortened by up to this fraction
    max_attempts: int

    def delay(self, attempt: int, random: Callable[[], float] = _random.random) -> float:
        """The wait after failed attempt number ``attempt`` (1 for the first)."""
        base = min(self.maximum, self.initial * self.multiplier ** min(attempt - 1, 64))
        return base * (1.0 - self.jitter * random())

    def exhausted(self, attempt: int) -> bool:
        """Whether ``attempt`` was the last one allowed."""
        return attempt >= self.max_attempts
