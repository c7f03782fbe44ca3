"""What the admin API may use, handed over by the application root: nothing else is reachable from it.

Values that a reload replaces (the configuration, the admin credential, the authenticator) are reached
through functions, so the admin API always sees the ones in force without holding the root.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from maas_gateway.admin.actions import AdminActions
from maas_gateway.admin.guard import AdminGuard
from maas_gateway.audit.entries import AuditLog
from maas_gateway.auth.failure_gate import FailureGate
from maas_gateway.auth.identity import Identity
from maas_gateway.auth.key_service import KeyService
from maas_gateway.auth.user_directory import UserDirectory
from maas_gateway.config.schema import GatewayConfig
from maas_gateway.http.asgi import Scope
from maas_gateway.metering import LedgerWriter
from maas_gateway.metering.reconcile import Reconciliation

__all__ = ["AdminServices"]


@dataclass(frozen=True, slots=True)
class AdminServices:
    keys: KeyService
    users: UserDirectory
    actions: AdminActions  # every change an administrator makes, recorded in the audit log
    audit: AuditLog  # read by GET /admin/audit
    ledger: LedgerWriter
    failures: FailureGate
    identify: Callable[[Scope], Awaitable[Identity]]  # a request's caller, after the throttle
    authenticate: Callable[[str], Awaitable[Identity]]  # a credential's identity (admin-group tokens)
    address: Callable[[Scope], str]  # the client's address, trusting the configured proxies
    guard: Callable[[], AdminGuard]
    config: Callable[[], GatewayConfig]
    backend_states: Callable[[str], list[dict[str, Any]]]  # a model's backends as they are now
    # The ledger against the backends' own token counters over [since, until) (GET /admin/usage/reconcile).
    reconcile: Callable[[float, float], Awaitable[list[Reconciliation]]] | None = None
