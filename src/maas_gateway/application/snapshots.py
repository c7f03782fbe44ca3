"""Building the ``Snapshot`` a configuration calls for, over the long-lived services.

A snapshot is built whole before it is put in force, so a configuration that cannot be applied is
refused (``ConfigError``) with the running one untouched.
"""

from __future__ import annotations

from maas_gateway.admin.guard import AdminGuard
from maas_gateway.application.policies import (
    capacity_rules,
    key_records,
    model_prices,
    model_route,
    pool_spec,
    rule_book,
    user_policy,
)
from maas_gateway.application.services import Services
from maas_gateway.auth import Authenticator, InMemoryKeyStore, OIDCVerifier
from maas_gateway.auth.keys import LayeredKeyStore
from maas_gateway.capacity import CapacityGuard
from maas_gateway.config.schema import GatewayConfig
from maas_gateway.http.forwarded import TrustedProxies
from maas_gateway.limits import Limiter
from maas_gateway.proxy.access_log import AccessLog
from maas_gateway.proxy.observers import ExchangeObservers
from maas_gateway.proxy.snapshot import Snapshot
from maas_gateway.routing import Router

__all__ = ["build_snapshot"]


def build_snapshot(
    config: GatewayConfig,
    services: Services,
    access_log: AccessLog,
    previous: Snapshot | None = None,
) -> Snapshot:
    """The snapshot for ``config``; with the same OIDC issuers as ``previous``, its token verifier (with
    its HTTP client and cached signing keys) is kept."""
    admin = AdminGuard.from_config(config.admin)  # may refuse (ConfigError) before anything is built
    oidc = None
    if previous is not None and previous.config.oidc == config.oidc:
        oidc = previous.authenticator.oidc
    elif config.oidc.issuers:
        oidc = OIDCVerifier(config.oidc)
    store = LayeredKeyStore(InMemoryKeyStore(key_records(config)), services.keys)
    limiter = None
    if services.limit_storage is not None:
        observer = None if services.alerts is None else services.alerts.notifier.observe
        limiter = Limiter(
            services.limit_storage,
            rule_book(
                config.tiers,
                config.users,
                timezone=config.limits.timezone,
                currency=config.pricing.currency,
                teams=config.teams,
                keys=config.api_keys,
                min_clamped_tokens=config.limits.min_clamped_tokens,
                media_part_tokens=config.limits.media_part_tokens,
            ),
            observer=observer,
        )
    router = Router([model_route(model) for model in config.models])
    rules = capacity_rules(config)
    # Last: nothing below can refuse the configuration, so the registry never holds a refused one's pools.
    backends = services.backends.update({model.name: pool_spec(model, config) for model in config.models})
    return Snapshot(
        config=config,
        router=router,
        backends=backends,
        authenticator=Authenticator(store, services.users, user_policy(config), oidc),
        limiter=limiter,
        capacity=CapacityGuard(services.capacity, rules) if rules.active else None,
        observers=ExchangeObservers(access_log, services.metrics, services.ledger, model_prices(config)),
        admin=admin,
        trusted_proxies=TrustedProxies(config.server.trusted_proxies),
        max_body_bytes=config.server.max_body_bytes,
    )
