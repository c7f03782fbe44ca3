"""Exposing the services' own counters as Prometheus metrics, read when scraped."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from maas_gateway.application.services import Services
from maas_gateway.balancing import HealthState, ModelBackends, display_url
from maas_gateway.capacity.resilient import ResilientCapacityStorage
from maas_gateway.limits.resilient import ResilientStorage
from maas_gateway.metrics import GatewayMetrics

__all__ = ["watch_backends", "watch_services"]

Series = dict[tuple[str, ...], float]


def watch_services(metrics: GatewayMetrics, services: Services) -> None:
    storage = services.limit_storage
    if isinstance(storage, ResilientStorage):
        shared = storage
        metrics.watch(
            "counter",
            "maas_limit_storage_failures",
            "Failed calls to the limit storage.",
            lambda: shared.failures,
        )
        metrics.watch(
            "counter",
            "maas_limit_storage_degraded_operations",
            "Limit checks served by the local fallback.",
            lambda: shared.degraded_operations,
        )
        metrics.watch(
            "gauge",
            "maas_limit_storage_degraded",
            "1 while the limit storage is unreachable.",
            lambda: float(shared.degraded),
            combine="max",  # with several workers: 1 while any of them is degraded
        )
    leases = services.capacity.leases
    metrics.watch(
        "counter",
        "maas_capacity_leases_lost",
        "Capacity leases found expired when renewed (their process stalled for a lease time).",
        lambda: leases.lost,
    )
    capacity_storage = services.capacity.storage
    if isinstance(capacity_storage, ResilientCapacityStorage):
        shared_slots = capacity_storage
        metrics.watch(
            "counter",
            "maas_capacity_storage_failures",
            "Failed calls to the capacity storage.",
            lambda: shared_slots.failures,
        )
        metrics.watch(
            "counter",
            "maas_capacity_storage_degraded_operations",
            "Capacity slots counted by the local fallback while the storage was unreachable.",
            lambda: shared_slots.degraded_operations,
        )
    ledger = services.ledger
    metrics.watch("counter", "maas_ledger_records_written", "Usage records stored.", lambda: ledger.written)
    metrics.watch("counter", "maas_ledger_write_failures", "Failed ledger flushes.", lambda: ledger.failures)
    metrics.watch(
        "counter", "maas_ledger_records_spooled", "Usage records spooled to disk.", lambda: ledger.spooled
    )
    metrics.watch(
        "counter",
        "maas_ledger_records_dropped",
        "Usage records dropped because neither the database nor the spool took them.",
        lambda: ledger.dropped,
    )
    metrics.watch(
        "gauge", "maas_ledger_records_buffered", "Usage records waiting in memory.", lambda: ledger.buffered
    )
    throttle = services.failures
    metrics.watch(
        "counter",
        "maas_auth_failures",
        "Rejected credentials (wrong, expired or revoked keys, invalid tokens, wrong admin key).",
        lambda: throttle.failures,
    )
    metrics.watch(
        "counter",
        "maas_auth_throttled",
        "Requests refused (429) because their address made too many failed authentications.",
        lambda: throttle.throttled,
    )


def watch_backends(metrics: GatewayMetrics, current: Callable[[], Mapping[str, ModelBackends]]) -> None:
    """Every model's backends, as the configuration in force has them: state, load, ejections, retries."""

    def states() -> Series:
        series: Series = {}
        for model, backends in current().items():
            for snapshot in backends.pool.snapshots():
                for state in HealthState:
                    series[(model, snapshot.url, state.value)] = float(snapshot.state is state)
        return series

    def in_flight() -> Series:
        return {
            (model, display_url(state.url)): float(state.in_flight)
            for model, backends in current().items()
            for state in backends.pool.backends
        }

    def ejections() -> Series:
        return {
            (model, display_url(state.url), kind.value): float(count)
            for model, backends in current().items()
            for state in backends.pool.backends
            for kind, count in state.health.ejections_by_kind.items()
        }

    def retries() -> Series:
        return {
            (model, cause): float(count)
            for model, backends in current().items()
            for cause, count in backends.counts.retries.items()
        }

    def fallbacks() -> Series:
        return {
            (model, fallback): float(count)
            for model, backends in current().items()
            for fallback, count in backends.counts.fallbacks.items()
        }

    def per_model(read: Callable[[ModelBackends], int]) -> Callable[[], Series]:
        return lambda: {(model,): float(read(backends)) for model, backends in current().items()}

    metrics.watch_family(
        "gauge",
        "maas_backend_state",
        "1 for each backend's state (healthy, unhealthy, ejected) as this process sees it.",
        ("model", "backend", "state"),
        states,
        combine="max",  # with several workers: 1 where any of them sees it so
    )
    metrics.watch_family(
        "gauge", "maas_backend_in_flight", "Requests in flight per backend.", ("model", "backend"), in_flight
    )
    metrics.watch_family(
        "counter",
        "maas_backend_ejections",
        "Backends ejected by outlier detection, by the kind of the last failure (connect, 5xx).",
        ("model", "backend", "kind"),
        ejections,
    )
    metrics.watch_family(
        "counter",
        "maas_backend_retries",
        "Requests sent again to another backend, by cause (connect: no connection; busy: a 429).",
        ("model", "cause"),
        retries,
    )
    metrics.watch_family(
        "counter",
        "maas_backend_retries_refused",
        "Retries the retry budget did not allow.",
        ("model",),
        per_model(lambda backends: backends.counts.retries_refused),
    )
    metrics.watch_family(
        "counter",
        "maas_backend_fallbacks",
        "Requests sent to a fallback model because none of the model's backends was available.",
        ("model", "fallback"),
        fallbacks,
    )
    metrics.watch_family(
        "counter",
        "maas_backend_panic_picks",
        "Requests sent to a backend although none of the model's (or its fallbacks') was available.",
        ("model",),
        per_model(lambda backends: backends.counts.panic_picks),
    )
    metrics.watch_family(
        "counter",
        "maas_backend_room_waits",
        "Requests that waited because every backend of the model was at its max_in_flight.",
        ("model",),
        per_model(lambda backends: backends.counts.room_waits),
    )
    metrics.watch_family(
        "counter",
        "maas_backend_room_timeouts",
        "Requests answered 503 because every backend of the model stayed at its max_in_flight.",
        ("model",),
        per_model(lambda backends: backends.counts.room_timeouts),
    )
