"""The interface every balancing policy implements: candidates in, a lease on one of them out.

``Picker.pick`` is on every request's path, so a pick is arithmetic over the handful of backends passed in:
no I/O, no awaiting, no sorting. The caller passes only the backends that may take a request (the
``BackendPool`` filters them); the picker decides among them.

Policies that rank backends by a score (lower is better, in units of "requests", divided by the backend's
weight) derive from ``ScoringPicker``, which breaks ties by rotation, so that equal backends share the
load instead of the first one taking it all, and which implements prefix affinity once for all of them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from maas_gateway.balancing.affinity import AffinityScores
from maas_gateway.balancing.backend import BackendState
from maas_gateway.balancing.lease import Lease

__all__ = ["Picker", "ScoringPicker"]


class Picker(ABC):
    """One instance per pool of backends: a picker may remember its past picks (rotation)."""

    def pick(self, candidates: Sequence[BackendState], affinity_key: str | None = None) -> Lease:
        """A lease on one of ``candidates``, already counted in flight; release it when the request ends.

        ``affinity_key`` (e.g. the start of the system prompt) asks for the backend that key maps to, if
        the policy supports affinity and that backend is not clearly busier than the best.
        """
        if not candidates:
            raise ValueError("A backend cannot be picked from an empty list of candidates.")
        return Lease(self.choose(candidates, affinity_key))

    @abstractmethod
    def choose(self, candidates: Sequence[BackendState], affinity_key: str | None) -> BackendState:
        """The backend the next request goes to; ``candidates`` is not empty."""


class ScoringPicker(Picker):
    """Picks the lowest score; with ``affinity_margin`` set, an affinity key's own backend is preferred
    while its score is at most ``affinity_margin`` above the lowest."""

    def __init__(self, *, affinity_margin: float | None = None) -> None:
        if affinity_margin is not None and not affinity_margin >= 0:
            raise ValueError(f"The affinity margin must be zero or more, not {affinity_margin!r}.")
        self.affinity_margin = affinity_margin
        self._affinity = AffinityScores()
        self._turn = 0
        self.affinity_kept = 0  # picks that went to the affinity key's backend
        self.affinity_overridden = 0  # picks that left it because it was clearly busier

    @abstractmethod
    def scores(self, candidates: Sequence[BackendState]) -> list[float]:
        """One score per candidate, in order; lower means less loaded."""

    def choose(self, candidates: Sequence[BackendState], affinity_key: str | None) -> BackendState:
        if len(candidates) == 1:
            return candidates[0]
        scores = self.scores(candidates)
        best = self._lowest(scores)
        if affinity_key is not None and self.affinity_margin is not None:
            preferred = self._affinity.preferred(affinity_key, candidates)
            if scores[preferred] <= scores[best] + self.affinity_margin:
                self.affinity_kept += 1
                return candidates[preferred]
            self.affinity_overridden += 1
        return candidates[best]

    def _lowest(self, scores: list[float]) -> int:
        """The index of the lowest score; among equal ones, the search starts one further each pick."""
        count = len(scores)
        start = self._turn % count
        self._turn += 1
        best = start
        for step in range(1, count):
            index = (start + step) % count
            if scores[index] < scores[best]:
                best = index
        return best
