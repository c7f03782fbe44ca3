"""Exposing the services' own counters as Prometheus metrics, read when scraped."""

from __future__ import annotations

from maas_gateway.application.services import Services
from maas_gateway.capacity.resilient import ResilientCapacityStorage
from maas_gateway.limits.resilient import ResilientStorage
from maas_gateway.metrics import GatewayMetrics

__all__ = ["watch_services"]


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
