"""Round robin, weighted smoothly: each backend gets its share of picks, interleaved rather than in runs.

This is nginx's smooth weighted round robin: every pick, each candidate gains its weight in credit; the
one with the most credit is picked and pays the sum of the candidates' weights. With equal weights it is a
plain rotation; with weights 5, 1, 1 the order is a a b a c a a, not a a a a a b c. Only the candidates
of the pick take part, so a backend that is out for a while neither builds up credit nor blocks the others.
Round robin knows nothing of load, so it ignores affinity keys.
"""

from __future__ import annotations

from collections.abc import Sequence

from maas_gateway.balancing.backend import BackendState
from maas_gateway.balancing.base import Picker

__all__ = ["RoundRobin"]


class RoundRobin(Picker):
    def __init__(self) -> None:
        self._credit: dict[BackendState, float] = {}

    def choose(self, candidates: Sequence[BackendState], affinity_key: str | None) -> BackendState:
        credit = self._credit
        total = 0.0
        chosen = candidates[0]
        best = -float("inf")
        for backend in candidates:
            total += backend.weight
            value = credit.get(backend, 0.0) + backend.weight
            credit[backend] = value
            if value > best:
                chosen, best = backend, value
        credit[chosen] = best - total
        return chosen
