"""How fast a model's slots come free in this process, for the ``Retry-After`` of a request turned away.

``per_second`` counts the releases of the last ``window`` seconds; a request with ``ahead`` others in
line before it can expect a slot in about ``(ahead + 1) / per_second`` seconds. ``mean_hold`` (an
exponentially weighted mean) is how long a request holds a slot: what a user whose own requests fill
their allowance waits for one of them to end.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

__all__ = ["DrainRate"]

_LONGEST_RETRY = 60  # seconds: beyond this an estimate is a guess, and a client should come back sooner


class DrainRate:
    def __init__(
        self, window: float = 30.0, clock: Callable[[], float] = time.monotonic, *, weight: float = 0.2
    ) -> None:
        self._window = window
        self._clock = clock
        self._weight = weight
        self._started = clock()
        self._releases: deque[float] = deque(maxlen=10_000)
        self._mean_hold: float | None = None

    def released(self, held_for: float) -> None:
        self._releases.append(self._clock())
        previous = self._mean_hold
        self._mean_hold = held_for if previous is None else previous + self._weight * (held_for - previous)

    def per_second(self) -> float:
        now = self._clock()
        while self._releases and self._releases[0] <= now - self._window:
            self._releases.popleft()
        # Over at least a second: three releases in the first 100 ms are not 30 a second.
        span = max(1.0, min(self._window, now - self._started))
        return len(self._releases) / span

    @property
    def mean_hold(self) -> float | None:
        return self._mean_hold

    def retry_after(self, ahead: int, fallback: float) -> int:
        """Seconds until a slot can be expected for the request after ``ahead`` others (whole, 1-60)."""
        rate = self.per_second()
        seconds = (ahead + 1) / rate if rate > 0 else fallback
        return _whole(seconds)

    def hold_retry_after(self, fallback: float) -> int:
        """Seconds until one of a user's own requests can be expected to end (whole, 1-60)."""
        return _whole(self._mean_hold if self._mean_hold is not None else fallback)


def _whole(seconds: float) -> int:
    return max(1, min(_LONGEST_RETRY, math.ceil(seconds)))
