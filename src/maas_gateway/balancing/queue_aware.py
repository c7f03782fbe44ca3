"""Queue-aware: the backend whose model server reports the least work, from samples scraped in the
background (``LoadScraper``); a pick only reads them.

A backend's score is, divided by its weight::

    1 + running + unseen + waiting_cost * waiting + kv_cost * kv_cache_usage

``running`` and ``waiting`` are vLLM's batch and queue; ``kv_cache_usage`` (0-1) warns of preemption
before the queue grows. ``unseen`` is the requests this replica sent since the sample was asked for and
that are still in flight (at most both): the server could not report them yet, and without them a burst
between two scrapes would all go to the backend that looked idlest. ``1`` is the request being placed, as
in ``LeastOutstanding``.

When any candidate has no sample younger than ``stale_after`` seconds, the whole pick falls back to least
outstanding requests: scores of the two kinds are not comparable, and a backend whose metrics cannot be
read must not look idle because of it. ``stale_picks`` counts those picks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

from maas_gateway.balancing.backend import BackendState
from maas_gateway.balancing.base import ScoringPicker
from maas_gateway.balancing.least_outstanding import outstanding_scores

__all__ = ["QueueAware"]


class QueueAware(ScoringPicker):
    def __init__(
        self,
        *,
        stale_after: float,
        waiting_cost: float = 4.0,
        kv_cost: float = 10.0,
        affinity_margin: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``waiting_cost``: a queued request counts as that many running ones (it waits for a slot);
        ``kv_cost``: a full KV cache counts as that many running requests."""
        super().__init__(affinity_margin=affinity_margin)
        numbers = {"stale_after": stale_after, "waiting_cost": waiting_cost, "kv_cost": kv_cost}
        for name, value in numbers.items():
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"The queue-aware {name} must be finite and zero or more, not {value!r}.")
        self.stale_after = stale_after
        self.waiting_cost = waiting_cost
        self.kv_cost = kv_cost
        self._clock = clock
        self.stale_picks = 0

    def scores(self, candidates: Sequence[BackendState]) -> list[float]:
        oldest = self._clock() - self.stale_after
        scores: list[float] = []
        for backend in candidates:
            reading = backend.load
            if reading is None or reading.at < oldest:
                self.stale_picks += 1
                return outstanding_scores(candidates)
            sample = reading.sample
            unseen = min(backend.in_flight, backend.started - reading.started_before)
            work = 1 + sample.running + unseen + self.waiting_cost * sample.waiting
            if sample.kv_cache_usage is not None:
                work += self.kv_cost * sample.kv_cache_usage
            scores.append(work / backend.weight)
        return scores
