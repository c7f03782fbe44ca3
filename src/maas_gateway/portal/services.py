"""What the portal may use, handed over by the application root: nothing else is reachable from it.

Values a reload replaces (the configuration, the limiter, the router) are reached through functions, so
every page sees the ones in force without holding the root. A page module reads what it needs from
``PageContext.services``; a new need is a new field here, filled in ``application/portal_wiring.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from maas_gateway.admin.actions import AdminActions
from maas_gateway.alerts import AlertOutbox
from maas_gateway.audit import AuditLog
from maas_gateway.auth.key_repository import StoredUser
from maas_gateway.auth.key_service import KeyService
from maas_gateway.auth.oidc import OIDCVerifier
from maas_gateway.auth.own_keys import OwnKeys
from maas_gateway.auth.throttle import FailureThrottle
from maas_gateway.auth.user_directory import UserDirectory
from maas_gateway.balancing.backend import BackendSnapshot
from maas_gateway.config.portal_settings import PortalSettings
from maas_gateway.config.schema import GatewayConfig
from maas_gateway.http.asgi import Scope
from maas_gateway.limits import Limiter
from maas_gateway.metering import LedgerWriter
from maas_gateway.metering.reports import UsageReports
from maas_gateway.portal.account_service import AccountService
from maas_gateway.portal.oidc.provider import IdentityProviders
from maas_gateway.portal.session_manager import SessionManager
from maas_gateway.portal.throttle import SignInThrottle
from maas_gateway.routing import Router

__all__ = ["PortalServices", "PortalUser"]


@dataclass(frozen=True, slots=True)
class PortalUser:
    """The signed-in person as of this request (their users row read fresh, through the shared cache)."""

    user: str
    display_name: str | None
    tier: str | None  # None: their source gives them no tier now (they may sign in, not call)
    is_admin: bool

    @property
    def name(self) -> str:
        return self.display_name or self.user


@dataclass(frozen=True, slots=True)
class PortalServices:
    accounts: AccountService
    sessions: SessionManager
    sign_in_throttle: SignInThrottle
    registrations: FailureThrottle  # self-registrations per client address and hour (each one counts)
    users: UserDirectory  # the users rows; the change watcher makes other replicas' changes visible at once
    keys: KeyService  # keys of every kind; ``keys.repository`` lists users
    own_keys: OwnKeys  # the signed-in user's own keys, under the same rules as /v1/keys
    ledger: LedgerWriter  # ``ledger.store`` answers usage questions; ``flush()`` before reading usage
    usage_reports: UsageReports  # the usage pages' reads, over the ledger's hourly rollups
    actions: AdminActions  # every administrator's change, audited; ``actions.plans`` for plan requests
    audit: AuditLog  # the audit log, read by the admin pages
    settings: Callable[[], PortalSettings]
    config: Callable[[], GatewayConfig]
    limiter: Callable[[], Limiter | None]  # None when limits are off
    router: Callable[[], Router]
    tier_of: Callable[[StoredUser, float], str | None]  # the tier a users row gets now, as API calls do
    address: Callable[[Scope], str]  # the client's address, trusting the configured proxies
    secure: Callable[[Scope], bool]  # whether the browser reached us over https (directly or via a proxy)
    origin: Callable[[Scope], str]  # "https://host:port" as the browser sees the gateway; display only
    oidc: Callable[[], OIDCVerifier | None]  # the API's token verifier in force (ID tokens of the sign-in)
    identity_providers: IdentityProviders  # the sign-in's provider endpoints and code exchange
    backends: Callable[[str], list[BackendSnapshot]]  # a model's backends as this replica sees them now
    clock: Callable[[], float] = field(default=time.time)
    alerts: AlertOutbox | None = None  # the budget alerts' outbox; None when alerts are off
