"""Building the portal's services over the long-lived ones: its account and session stores sit beside
the users table (SQL with ``database.url``, in memory without), and it reads the snapshot in force."""

from __future__ import annotations

from collections.abc import Callable

from maas_gateway.admin.actions import AdminActions
from maas_gateway.application.policies import user_policy
from maas_gateway.application.services import Services
from maas_gateway.auth.key_repository import StoredUser
from maas_gateway.auth.own_keys import OwnKeys
from maas_gateway.auth.throttle import FailureThrottle
from maas_gateway.auth.user_policy import UserPolicy
from maas_gateway.balancing.backend import BackendSnapshot
from maas_gateway.errors import GatewayError
from maas_gateway.http.asgi import Scope
from maas_gateway.http.forwarded import came_over_https, client_address
from maas_gateway.portal import PortalServices
from maas_gateway.portal.account_service import AccountService
from maas_gateway.portal.accounts import AccountStore
from maas_gateway.portal.memory_accounts import InMemoryAccountStore
from maas_gateway.portal.oidc import IdentityProviders
from maas_gateway.portal.origin import external_origin
from maas_gateway.portal.passwords import Passwords
from maas_gateway.portal.session_manager import SessionManager, SessionTimes
from maas_gateway.portal.sessions import InMemorySessionStore, SessionStore
from maas_gateway.portal.throttle import SignInThrottle
from maas_gateway.proxy.snapshot import Snapshot

__all__ = ["portal_services"]


def portal_services(
    services: Services, current: Callable[[], Snapshot], actions: AdminActions
) -> PortalServices:
    """The portal's view of ``services``; ``current`` returns the snapshot in force; ``actions`` are the
    admin API's own (one audited path for every administrator's change, whichever door it came through)."""
    accounts: AccountStore
    sessions: SessionStore
    if services.database is None:
        accounts = InMemoryAccountStore(services.repository)
        sessions = InMemorySessionStore()
    else:
        from maas_gateway.portal.sql_accounts import SqlAccountStore
        from maas_gateway.portal.sql_sessions import SqlSessionStore

        accounts = SqlAccountStore(services.database)
        sessions = SqlSessionStore(services.database)

    def times() -> SessionTimes:
        settings = current().config.portal
        return SessionTimes(settings.session_idle_timeout, settings.session_lifetime)

    policies: dict[int, UserPolicy] = {}  # the policy of the configuration in force, built once per reload

    def tier_of(stored: StoredUser, now: float) -> str | None:
        # As for a key created through the API: the users row (and its source) decides the tier.
        config = current().config
        policy = policies.get(id(config))
        if policy is None:
            policies.clear()
            policy = policies[id(config)] = user_policy(config)
        try:
            return policy.tier(stored.user, "key", "", stored, now) or None
        except GatewayError:
            return None

    def address(scope: Scope) -> str:
        return client_address(scope, current().trusted_proxies)

    def secure(scope: Scope) -> bool:
        return came_over_https(scope, current().trusted_proxies)

    def backends(model: str) -> list[BackendSnapshot]:
        found = current().backends.get(model)
        return [] if found is None else found.pool.snapshots()

    return PortalServices(
        accounts=AccountService(accounts, Passwords()),
        sessions=SessionManager(sessions, times),
        sign_in_throttle=SignInThrottle(current().config.portal.sign_in_throttle),
        registrations=FailureThrottle(
            burst=current().config.portal.self_registration.per_address, per=3600.0, max_addresses=100_000
        ),
        users=services.users,
        keys=services.keys,
        own_keys=OwnKeys(services.keys, services.users, lambda: current().config),
        ledger=services.ledger,
        usage_reports=services.usage_reports,
        actions=actions,
        audit=services.audit,
        settings=lambda: current().config.portal,
        config=lambda: current().config,
        limiter=lambda: current().limiter,
        router=lambda: current().router,
        tier_of=tier_of,
        address=address,
        secure=secure,
        origin=lambda scope: external_origin(scope, current().trusted_proxies),
        oidc=lambda: current().authenticator.oidc,
        identity_providers=IdentityProviders(),
        backends=backends,
        alerts=None if services.alerts is None else services.alerts.outbox,
    )
