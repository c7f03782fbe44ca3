"""The backends of every model, kept across reloads: a reload changes what changed and nothing else.

A backend's state (its health, its requests in flight, its last load) is one ``BackendState`` per URL,
weight, cap and health policy: models that share a server with the same settings share its state, and a
reload that keeps a backend keeps its state, even when the model's other backends change. A model whose
settings did not change keeps its ``ModelBackends`` whole (its picker's rotation, its retry budget's
window). ``polls`` says which backends the background pollers must ask, and how often.

Only the event loop's thread calls it (at start and on reload), so it needs no lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from maas_gateway.balancing.backend import BackendState
from maas_gateway.balancing.base import Picker
from maas_gateway.balancing.health import HealthPolicy, HealthTracker
from maas_gateway.balancing.least_outstanding import LeastOutstanding
from maas_gateway.balancing.model_backends import BalancingCounts, ModelBackends
from maas_gateway.balancing.pool import BackendPool
from maas_gateway.balancing.queue_aware import QueueAware
from maas_gateway.balancing.retry_budget import RetryBudget
from maas_gateway.balancing.round_robin import RoundRobin
from maas_gateway.balancing.specs import BackendSpec, PickerSpec, PollSpec, PoolSpec

__all__ = ["BackendRegistry", "PollKind", "PollPlan", "polls"]

_StateKey = tuple[str, float, int | None, HealthPolicy]
PollKind = str  # "health" or "load"
PollPlan = dict[tuple[PollKind, PollSpec], tuple[BackendState, ...]]


class BackendRegistry:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._states: dict[_StateKey, BackendState] = {}
        self._models: dict[str, ModelBackends] = {}
        self._counts: dict[str, BalancingCounts] = {}

    def update(self, specs: Mapping[str, PoolSpec]) -> dict[str, ModelBackends]:
        """The backends of each model of a new configuration, reusing whatever did not change."""
        models: dict[str, ModelBackends] = {}
        states: dict[_StateKey, BackendState] = {}
        for name, spec in specs.items():
            previous = self._models.get(name)
            if previous is not None and previous.spec == spec:
                models[name] = previous
                for state in previous.pool.backends:
                    states[(state.url, state.weight, state.max_in_flight, spec.health)] = state
        for name, spec in specs.items():
            if name in models:
                continue
            backends = []
            for backend in spec.backends:
                key = (backend.url, backend.weight, backend.max_in_flight, spec.health)
                state = states.get(key) or self._states.get(key) or self._new_state(backend, spec.health)
                states[key] = state
                backends.append(state)
            previous = self._models.get(name)
            budget = (
                previous.retry_budget
                if previous is not None and previous.spec.retry == spec.retry
                else RetryBudget(
                    ratio=spec.retry.ratio,
                    min_retries=spec.retry.min_retries,
                    window=spec.retry.window,
                    clock=self._clock,
                )
            )
            counts = self._counts.setdefault(name, BalancingCounts())
            pool = BackendPool(backends, self._picker(spec.picker), clock=self._clock)
            models[name] = ModelBackends(spec, pool, budget, counts)
        self._states = states
        self._models = models
        return dict(models)

    def _new_state(self, backend: BackendSpec, health: HealthPolicy) -> BackendState:
        tracker = HealthTracker(health, clock=self._clock)
        return BackendState(
            backend.url, weight=backend.weight, health=tracker, max_in_flight=backend.max_in_flight
        )

    def _picker(self, spec: PickerSpec) -> Picker:
        if spec.policy == "round-robin":
            return RoundRobin()
        if spec.policy == "queue-aware":
            return QueueAware(
                stale_after=spec.stale_after,
                waiting_cost=spec.waiting_cost,
                kv_cost=spec.kv_cost,
                affinity_margin=spec.affinity_margin,
                clock=self._clock,
            )
        return LeastOutstanding(affinity_margin=spec.affinity_margin)


def polls(models: Mapping[str, ModelBackends]) -> PollPlan:
    """Which backends each background poll asks: ``("health", spec)`` for the health checks and
    ``("load", spec)`` for the queue-aware load scrapes, each backend once per kind and timing."""
    plan: dict[tuple[PollKind, PollSpec], dict[BackendState, None]] = {}
    for backends in models.values():
        spec = backends.spec
        for kind, timing in (("health", spec.health_checks), ("load", spec.load_scrape)):
            if timing is not None:
                targets = plan.setdefault((kind, timing), {})
                targets.update(dict.fromkeys(backends.pool.backends))
    return {key: tuple(targets) for key, targets in plan.items()}
