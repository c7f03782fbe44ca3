"""Spreading a model's requests over its backends: health, balancing policies, retries, background polls.

Plain units, not wired into the router yet (docs/routing.md). A ``BackendState`` is one backend as this
replica sees it; its ``HealthTracker`` combines the active health check and passive ejection; a ``Lease``
counts one request in flight until released and reports its outcome.
"""

from maas_gateway.balancing.backend import BackendSnapshot, BackendState, display_url
from maas_gateway.balancing.health import FailureKind, HealthPolicy, HealthState, HealthTracker
from maas_gateway.balancing.lease import Lease
from maas_gateway.balancing.load import LoadReading, LoadSample

__all__ = [
    "BackendSnapshot",
    "BackendState",
    "FailureKind",
    "HealthPolicy",
    "HealthState",
    "HealthTracker",
    "Lease",
    "LoadReading",
    "LoadSample",
    "display_url",
]
