"""How many retries the gateway may send: a share of recent requests, so retries cannot become a storm.

Retrying every failed request doubles the load on the backends exactly when they are failing. A budget
(as in Finagle and Linkerd) allows retries while they are at most ``ratio`` of the requests of the last
``window`` seconds, and always at least ``min_retries`` per window, so that a gateway with little traffic
can still retry its rare failures.

The window slides in ``buckets`` steps: counts are kept per ``window / buckets`` seconds and the oldest
step is dropped whole, so every call is constant time and memory is fixed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["RetryBudget"]


class RetryBudget:
    def __init__(
        self,
        *,
        ratio: float = 0.2,
        min_retries: int = 3,
        window: float = 10.0,
        buckets: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (math.isfinite(ratio) and ratio >= 0):
            raise ValueError(f"The retry budget's ratio must be finite and zero or more, not {ratio!r}.")
        if min_retries < 0:
            raise ValueError(f"The retry budget's min_retries must be zero or more, not {min_retries}.")
        if not (math.isfinite(window) and window > 0) or buckets < 1:
            raise ValueError("The retry budget's window must be positive and it needs at least one bucket.")
        self.ratio = ratio
        self.min_retries = min_retries
        self.window = window
        self._width = window / buckets
        self._requests = [0] * buckets
        self._retries = [0] * buckets
        self._request_total = 0
        self._retry_total = 0
        self._clock = clock
        self._step = math.floor(clock() / self._width)
        self.refused = 0  # retries refused, for the metrics

    @property
    def requests(self) -> int:
        """Requests recorded in the current window."""
        self._advance()
        return self._request_total

    @property
    def retries(self) -> int:
        """Retries spent in the current window."""
        self._advance()
        return self._retry_total

    def record_request(self) -> None:
        """A request arrived (count each request once, not its retries)."""
        self._advance()
        self._requests[self._step % len(self._requests)] += 1
        self._request_total += 1

    def try_spend(self) -> bool:
        """May a failed request be retried now? If so, the retry is counted against the budget."""
        self._advance()
        allowed = max(float(self.min_retries), self.ratio * self._request_total)
        if self._retry_total + 1 > allowed:
            self.refused += 1
            return False
        self._retries[self._step % len(self._retries)] += 1
        self._retry_total += 1
        return True

    def _advance(self) -> None:
        """Drop the steps that have left the window since the last call."""
        step = math.floor(self._clock() / self._width)
        if step <= self._step:
            return
        buckets = len(self._requests)
        for passed in range(self._step + 1, self._step + 1 + min(step - self._step, buckets)):
            slot = passed % buckets
            self._request_total -= self._requests[slot]
            self._retry_total -= self._retries[slot]
            self._requests[slot] = 0
            self._retries[slot] = 0
        self._step = step
