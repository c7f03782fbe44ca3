"""One model's backends as the request path uses them: the pool to pick from, the retry budget, and
counts of what the request path did with them (for the metrics).

A configuration snapshot holds one ``ModelBackends`` per model; the ``BackendRegistry`` hands the same
object to the next snapshot when the model's settings did not change, and the same counters always, so
the metrics never go back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from maas_gateway.balancing.pool import BackendPool
from maas_gateway.balancing.retry_budget import RetryBudget
from maas_gateway.balancing.specs import PoolSpec

__all__ = ["BalancingCounts", "ModelBackends"]


@dataclass(slots=True)
class BalancingCounts:
    """What the request path did for one model; every count only grows."""

    retries: dict[str, int] = field(default_factory=dict)  # retries sent, by cause: "connect", "busy"
    retries_refused: int = 0  # retries the budget did not allow
    fallbacks: dict[str, int] = field(default_factory=dict)  # requests sent to a fallback, by that model
    panic_picks: int = 0  # requests sent to a backend although none was available
    room_waits: int = 0  # requests that waited because every backend was at its max_in_flight
    room_timeouts: int = 0  # requests answered 503 for that: at their deadline, or at once (full line)

    def retried(self, cause: str) -> None:
        self.retries[cause] = self.retries.get(cause, 0) + 1

    def fell_back(self, model: str) -> None:
        self.fallbacks[model] = self.fallbacks.get(model, 0) + 1


class ModelBackends:
    __slots__ = ("counts", "pool", "retry_budget", "spec", "waiting_for_room")

    def __init__(
        self, spec: PoolSpec, pool: BackendPool, retry_budget: RetryBudget, counts: BalancingCounts
    ) -> None:
        self.spec = spec
        self.pool = pool
        self.retry_budget = retry_budget
        self.counts = counts
        self.waiting_for_room = 0  # requests of this process waiting for a backend below its cap

    def __repr__(self) -> str:
        return f"ModelBackends({list(self.pool.backends)!r})"

    def has_available(self) -> bool:
        """Whether some backend may take a request now (for ``/ready``)."""
        return bool(self.pool.available())
