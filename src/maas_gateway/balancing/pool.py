"""The backends of one model with their picker: which may take a request now, and a lease on one of them.

When none is available, ``pick`` returns None rather than choosing for the caller, because the caller
knows what else there is: a model's fallback models come first. Only when they have nothing either does
the caller ask ``panic_pick``, which picks among every backend whatever its state (Envoy's "panic mode"):
health data can be wrong or stale (a network blip ejects everything at once), and a request that may
succeed beats a certain 503. ``panics`` counts those picks, for the metrics.

A backend at its ``max_in_flight`` (this process's requests in flight) is never picked, not even in
panic mode: it is left out like an unavailable one, so that the request goes to another backend, and
when every backend is full ``pick`` and ``panic_pick`` return None and the caller waits for room
(``room.py``). Unlike health, a cap is a promise to the backend's operator, and a fleet that is merely
busy is no reason to break it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from maas_gateway.balancing.backend import BackendSnapshot, BackendState
from maas_gateway.balancing.base import Picker
from maas_gateway.balancing.lease import Lease

__all__ = ["BackendPool"]


class BackendPool:
    def __init__(
        self,
        backends: Sequence[BackendState],
        picker: Picker,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not backends:
            raise ValueError("A backend pool needs at least one backend.")
        self.backends = tuple(backends)
        self.picker = picker
        self._clock = clock
        self.panics = 0

    def available(self) -> list[BackendState]:
        now = self._clock()
        return [backend for backend in self.backends if backend.available(now)]

    def pick(self, affinity_key: str | None = None, *, avoid: BackendState | None = None) -> Lease | None:
        """A lease on an available backend other than ``avoid`` (the one a retry leaves); None if there is
        none."""
        now = self._clock()
        candidates = [b for b in self.backends if b is not avoid and b.available(now) and b.has_room()]
        return self.picker.pick(candidates, affinity_key) if candidates else None

    def panic_pick(
        self, affinity_key: str | None = None, *, avoid: BackendState | None = None
    ) -> Lease | None:
        """A lease on any backend other than ``avoid`` (or on ``avoid`` if it is the only one), available or
        not, that is below its cap: for when ``pick`` and every fallback found nothing. None when every
        backend is at its cap."""
        candidates = [b for b in self.backends if b is not avoid] or list(self.backends)
        candidates = [b for b in candidates if b.has_room()]
        if not candidates:
            return None
        self.panics += 1
        return self.picker.pick(candidates, affinity_key)

    def any_available(self) -> bool:
        """Whether some backend is available, with room or not: if so, a full pool waits for room rather
        than panic-picking a backend that is out."""
        now = self._clock()
        return any(backend.available(now) for backend in self.backends)

    def snapshots(self) -> list[BackendSnapshot]:
        now = self._clock()
        return [backend.snapshot(now) for backend in self.backends]
