"""Prometheus metrics of the gateway, per user, tier and model.

``authorized_calls`` and ``limited_calls`` keep the origin system's names (Limitador's), now with a
``user`` label so a platform team can see who is calling; Prometheus counters get the ``_total`` suffix.
With ``metrics.user_label: false`` the user label is left out, for deployments with very many users:
each series costs memory in the gateway and in Prometheus, roughly users x tiers x models per metric.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from maas_gateway.metrics.multiprocess import render_directory, retire_process
from maas_gateway.metrics.watched import Combine, Kind, LabelledValues, PublishedValues, ScrapeTimeValues

__all__ = ["CONTENT_TYPE", "GatewayMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_WAIT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass(frozen=True, slots=True)
class _CallerSeries:
    """The counters of one (user, tier, model), resolved once."""

    authorized: Any
    limited: Any
    prompt: Any
    completion: Any
    charged: Any


class GatewayMetrics:
    """The gateway's metrics in one process, or in one worker of several (``shared_directory`` set).

    With a shared directory prometheus_client keeps the values in files there (it was imported with
    ``PROMETHEUS_MULTIPROC_DIR`` naming it), and ``render`` merges the files of every worker.
    """

    def __init__(self, *, user_label: bool = True, shared_directory: Path | None = None) -> None:
        self.shared_directory = shared_directory
        self.registry = CollectorRegistry(auto_describe=True)
        self.user_label = user_label
        who = ["user", "tier", "model"] if user_label else ["tier", "model"]
        self.authorized_calls = Counter(
            "authorized_calls", "Requests admitted to a model.", who, registry=self.registry
        )
        self.limited_calls = Counter(
            "limited_calls", "Requests refused by a rate limit (429).", who, registry=self.registry
        )
        self.tokens = Counter(
            "maas_tokens",
            "Tokens used, by kind (prompt or completion).",
            [*who, "kind"],
            registry=self.registry,
        )
        self.charged_tokens = Counter(
            "maas_charged_tokens",
            "Tokens charged against limits (after multipliers).",
            who,
            registry=self.registry,
        )
        self.requests = Counter(
            "maas_requests",
            "Answered requests by endpoint and status.",
            ["model", "endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "maas_request_duration_seconds",
            "Time from request to the end of the answer.",
            ["model", "endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.time_to_first_token = Histogram(
            "maas_time_to_first_token_seconds",
            "Time from request to the first streamed event.",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.backend_errors = Counter(
            "maas_backend_errors",
            "Backend failures (unreachable, timeout, broken answer).",
            ["model", "code"],
            registry=self.registry,
        )
        # Capacity (capacity/): requests waiting for a capped model, how long they waited and how it
        # ended, and the model's slots this process holds. Workers' gauges add up to the pod's.
        self.capacity_queue = Gauge(
            "maas_capacity_queue_depth",
            "Requests waiting for a slot of a capped model.",
            ["model", "tier"],
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.capacity_wait = Histogram(
            "maas_capacity_wait_seconds",
            "Time requests waited for a slot, by how the wait ended (served, timeout, shed, rejected).",
            ["model", "tier", "outcome"],
            buckets=_WAIT_BUCKETS,
            registry=self.registry,
        )
        self.capacity_in_flight = Gauge(
            "maas_capacity_in_flight",
            "Slots of a capped model held by requests in progress (this pod's share of the cap).",
            ["model"],
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self._watched: ScrapeTimeValues | PublishedValues
        if shared_directory is None:
            self._watched = ScrapeTimeValues()
            self.registry.register(self._watched)
        else:
            self._watched = PublishedValues(self.registry)
        self._callers: dict[tuple[str, str, str], _CallerSeries] = {}
        self._routes: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._first_token: dict[str, Any] = {}
        self._in_flight: dict[str, Any] = {}  # per model; changed twice by every capped request

    def record(
        self,
        *,
        user: str,
        tier: str,
        model: str,
        endpoint: str,
        status: int,
        admitted: bool,
        rate_limited: bool,
        tokens: tuple[int, int, int] | None,
        latency: float,
        time_to_first_token: float | None,
        backend_error: str | None,
    ) -> None:
        """Count one finished request. ``tokens`` is (prompt, completion, charged), if known.

        Label children are looked up once per caller and cached: ``labels()`` takes a lock and builds a
        key on every call, which on a busy gateway core is measurable.
        """
        caller = self._callers.get((user, tier, model))
        if caller is None:
            labels = self.labels(user, tier, model)
            caller = _CallerSeries(
                self.authorized_calls.labels(*labels),
                self.limited_calls.labels(*labels),
                self.tokens.labels(*labels, "prompt"),
                self.tokens.labels(*labels, "completion"),
                self.charged_tokens.labels(*labels),
            )
            self._callers[(user, tier, model)] = caller
        if rate_limited:
            caller.limited.inc()
        elif admitted:
            caller.authorized.inc()
        if tokens is not None:
            caller.prompt.inc(tokens[0])
            caller.completion.inc(tokens[1])
            caller.charged.inc(tokens[2])
        route = self._routes.get((model, endpoint, status))
        if route is None:
            route = (self.requests.labels(model, endpoint, str(status)), self.latency.labels(model, endpoint))
            self._routes[(model, endpoint, status)] = route
        route[0].inc()
        if admitted:
            route[1].observe(latency)
        if time_to_first_token is not None:
            first_token = self._first_token.get(model)
            if first_token is None:
                first_token = self._first_token[model] = self.time_to_first_token.labels(model)
            first_token.observe(time_to_first_token)
        if backend_error is not None:
            self.backend_errors.labels(model, backend_error).inc()

    def queue_changed(self, model: str, tier: str, change: int) -> None:
        """``CapacityEvents``: requests joined (+) or left (-) a model's line."""
        self.capacity_queue.labels(model, tier).inc(change)

    def waited(self, model: str, tier: str, seconds: float, outcome: str) -> None:
        """``CapacityEvents``: a request's wait for a slot ended."""
        self.capacity_wait.labels(model, tier, outcome).observe(seconds)

    def in_flight_changed(self, model: str, change: int) -> None:
        """``CapacityEvents``: slots taken (+) or given back (-)."""
        child = self._in_flight.get(model)
        if child is None:
            child = self._in_flight[model] = self.capacity_in_flight.labels(model)
        child.inc(change)

    def watch(
        self,
        kind: Kind,
        name: str,
        documentation: str,
        read: Callable[[], float],
        combine: Combine = "sum",
    ) -> None:
        """Export a value owned elsewhere (``kind`` is counter or gauge; see watched.py).

        ``combine`` says how the gauges of several workers make the pod's value: their sum or maximum.
        """
        self._watched.add(kind, name, documentation, read, combine)

    def watch_family(
        self,
        kind: Kind,
        name: str,
        documentation: str,
        labels: Sequence[str],
        read: LabelledValues,
        combine: Combine = "sum",
    ) -> None:
        """Export values owned elsewhere as one metric with ``labels``: ``read`` maps label values to
        values."""
        self._watched.add_family(kind, name, documentation, labels, read, combine)

    def publish(self) -> None:
        """Copy the watched values where a scrape sees them (only workers need it; cheap, a few values)."""
        self._watched.publish()

    def labels(self, user: str, tier: str, model: str) -> tuple[str, ...]:
        return (user, tier, model) if self.user_label else (tier, model)

    def close(self) -> None:
        """At a worker's end: publish its last values and stop counting its live gauges."""
        if self.shared_directory is not None:
            self.publish()
            retire_process(os.getpid(), self.shared_directory)

    def render(self) -> bytes:
        """The Prometheus text of this process, or of every worker when there are several."""
        if self.shared_directory is None:
            return generate_latest(self.registry)
        self.publish()
        return render_directory(self.shared_directory)
