"""What one request runs under: the configuration in force and the objects built from it.

A reload builds a new ``Snapshot`` and swaps one reference; a request reads that reference once, when
it starts, and finishes under the objects it started with. Nothing in a snapshot is changed after it is
built, so there is no half-applied configuration to observe. The models' backends are the exception by
design: their health and load change all the time, and a reload that keeps a model keeps its
``ModelBackends`` (``balancing.BackendRegistry``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from maas_gateway.admin.guard import AdminGuard
from maas_gateway.auth import Authenticator
from maas_gateway.balancing import ModelBackends
from maas_gateway.capacity import CapacityGuard
from maas_gateway.config.schema import GatewayConfig
from maas_gateway.http.forwarded import TrustedProxies
from maas_gateway.limits import Limiter
from maas_gateway.proxy.observers import ExchangeObservers
from maas_gateway.routing import Router

__all__ = ["Snapshot"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    config: GatewayConfig  # what the admin API shows and validates against
    router: Router
    backends: Mapping[str, ModelBackends]  # by model name: each model's pool, retry budget and counts
    authenticator: Authenticator
    limiter: Limiter | None  # None when limits are off
    capacity: CapacityGuard | None  # None when no model, tier or user is capped
    observers: ExchangeObservers  # the ledger, metrics and access log, with this configuration's prices
    admin: AdminGuard
    trusted_proxies: TrustedProxies
    max_body_bytes: int
