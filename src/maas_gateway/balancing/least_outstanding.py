"""Least outstanding requests: the backend with the fewest requests in flight from this replica.

The score is ``(in_flight + 1) / weight``: the request about to be placed counts too, so that with
nothing in flight a backend of weight 3 is preferred to one of weight 1, and in a steady state it holds
three times as many requests. It needs nothing from the backends but this replica's own count, so it
works for any OpenAI-compatible server, and it is what ``QueueAware`` falls back to when its data is old.
"""

from __future__ import annotations

from collections.abc import Sequence

from maas_gateway.balancing.backend import BackendState
from maas_gateway.balancing.base import ScoringPicker

__all__ = ["LeastOutstanding", "outstanding_scores"]


def outstanding_scores(candidates: Sequence[BackendState]) -> list[float]:
    return [(backend.in_flight + 1) / backend.weight for backend in candidates]


class LeastOutstanding(ScoringPicker):
    def scores(self, candidates: Sequence[BackendState]) -> list[float]:
        return outstanding_scores(candidates)
