"""What a configuration asks of one model's backends, as plain frozen values.

``application/policies.py`` builds these from the configuration file; the ``BackendRegistry`` compares
them with the previous configuration's to keep what did not change (a backend's health and requests in
flight, a picker's rotation, a retry budget's window) across a reload.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from maas_gateway.balancing.health import HealthPolicy

__all__ = ["BackendSpec", "PickerSpec", "PollSpec", "PoolSpec", "RetrySpec", "RoomSpec"]

Policy = Literal["least-outstanding", "round-robin", "queue-aware"]


@dataclass(frozen=True, slots=True)
class BackendSpec:
    url: str  # base URL without a trailing slash; credentials, if any, stay in it
    weight: float = 1.0
    max_in_flight: int | None = None  # None: no cap; counted by this process only


@dataclass(frozen=True, slots=True)
class PickerSpec:
    policy: Policy = "least-outstanding"
    affinity_margin: float | None = None  # None: no prefix affinity
    stale_after: float = 1.0  # queue-aware: a load older than this is not trusted
    waiting_cost: float = 4.0
    kv_cost: float = 10.0


@dataclass(frozen=True, slots=True)
class PollSpec:
    """How often one kind of background poll asks each backend, and how long it waits for an answer."""

    interval: float
    timeout: float


@dataclass(frozen=True, slots=True)
class RetrySpec:
    ratio: float = 0.2
    min_retries: int = 3
    window: float = 10.0


@dataclass(frozen=True, slots=True)
class RoomSpec:
    """How requests wait when every backend that could take them is at its ``max_in_flight``."""

    max_waiting: int = 100  # requests of the model waiting in this process at once; 0: none waits
    timeout: float = 10.0  # seconds a request waits before it is answered 503


@dataclass(frozen=True, slots=True)
class PoolSpec:
    backends: tuple[BackendSpec, ...]
    picker: PickerSpec = field(default_factory=PickerSpec)
    health: HealthPolicy = field(default_factory=HealthPolicy)
    health_checks: PollSpec | None = None  # None: no active health checks
    load_scrape: PollSpec | None = None  # set for queue-aware balancing
    retry: RetrySpec = field(default_factory=RetrySpec)
    room: RoomSpec = field(default_factory=RoomSpec)
