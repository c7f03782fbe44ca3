"""Building the gateway's parts from a configuration, and starting and stopping them."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from maas_gateway.admin.guard import AdminGuard
from maas_gateway.admin.services import AdminServices
from maas_gateway.auth import Authenticator, Identity, InMemoryKeyStore, KeyRecord, OIDCVerifier
from maas_gateway.auth.change_watcher import ChangeSignal, IdentityChangeWatcher
from maas_gateway.auth.credentials import parse_authorization
from maas_gateway.auth.failure_gate import FailureGate
from maas_gateway.auth.key_repository import IdentityChange, KeyRepository
from maas_gateway.auth.key_service import KeyService
from maas_gateway.auth.keys import LayeredKeyStore, key_id_for
from maas_gateway.auth.memory_key_repository import InMemoryKeyRepository
from maas_gateway.auth.throttle import FailureThrottle
from maas_gateway.auth.user_directory import UserDirectory
from maas_gateway.auth.user_policy import UserPolicy
from maas_gateway.config.schema import DatabaseSettings, GatewayConfig, LimitsSettings
from maas_gateway.database import Database
from maas_gateway.http.asgi import Scope, request_header
from maas_gateway.http.forwarded import TrustedProxies
from maas_gateway.limits import InMemoryLimitStorage, Limiter, LimitStorage, RuleBook
from maas_gateway.limits.resilient import ResilientStorage
from maas_gateway.metering import InMemoryLedgerStore, LedgerStore, LedgerWriter, Spool
from maas_gateway.metrics import GatewayMetrics
from maas_gateway.metrics.endpoint import MetricsEndpoint
from maas_gateway.metrics.multiprocess import shared_directory
from maas_gateway.proxy.access_log import AccessLog
from maas_gateway.proxy.observers import ExchangeObservers
from maas_gateway.proxy.pipeline import Pipeline
from maas_gateway.routing import Router
from maas_gateway.upstream import HttptoolsTransport, tls_context

__all__ = ["Components", "build_components", "key_records"]

logger = logging.getLogger("maas_gateway")


def key_records(config: GatewayConfig) -> list[KeyRecord]:
    records = []
    for key in config.api_keys:
        models = frozenset(key.models) if key.models is not None else None
        # The public id is computed once here rather than on every request.
        records.append(KeyRecord(key.digest, key.user, key.tier, key.name, models, key_id_for(key.digest)))
    return records


def _storage(settings: LimitsSettings) -> LimitStorage:
    if settings.storage == "memory":
        return InMemoryLimitStorage()
    from maas_gateway.limits.redis_storage import RedisLimitStorage

    return ResilientStorage(
        RedisLimitStorage(settings.storage, timeout=settings.storage_timeout),
        policy=settings.failure_policy,
        timeout=settings.storage_timeout,
        retry_interval=settings.retry_interval,
        # The standalone connection keeps its own time; redis-py's cluster client retries beyond it.
        primary_times_out=not settings.storage.startswith("redis+cluster://"),
    )


def _database(settings: DatabaseSettings) -> Database | None:
    if settings.url is None:
        return None
    return Database(settings.url, migrate=settings.migrate_on_start, pool_size=settings.pool_size)


def _change_signal(config: GatewayConfig, database: Database) -> ChangeSignal | None:
    """PostgreSQL's NOTIFY where the database is PostgreSQL, else Redis pub/sub where limits use Redis."""
    from maas_gateway.auth.change_signals import PostgresChangeSignal, RedisChangeSignal

    if database.is_postgres:
        return PostgresChangeSignal(database.url)
    storage = config.limits.storage
    if config.limits.enabled and storage.startswith(("redis://", "rediss://", "unix://")):
        return RedisChangeSignal(storage, timeout=config.limits.storage_timeout)
    return None


def _key_repository(
    config: GatewayConfig, database: Database | None
) -> tuple[KeyRepository, ChangeSignal | None]:
    if database is None:
        return InMemoryKeyRepository(), None
    from maas_gateway.auth.signalling_repository import SignallingKeyRepository
    from maas_gateway.auth.sql_key_repository import SqlKeyRepository

    repository: KeyRepository = SqlKeyRepository(database)
    signal = _change_signal(config, database)
    if signal is not None:
        repository = SignallingKeyRepository(repository, signal)
    return repository, signal


def user_policy(config: GatewayConfig) -> UserPolicy:
    configured_users = {key.user for key in config.api_keys} | set(config.users)
    configured = {user: tier for user in configured_users if (tier := config.configured_tier(user))}
    overrides = {user: o.tier for user, o in config.users.items() if o.tier is not None}
    revalidation = {
        issuer.user_namespace: issuer.owner_revalidation
        for issuer in config.oidc.issuers
        if issuer.owner_revalidation is not None
    }
    return UserPolicy(configured, overrides, revalidation)


def _ledger(settings: DatabaseSettings, database: Database | None) -> LedgerWriter:
    store: LedgerStore
    if database is None:
        store = InMemoryLedgerStore()
    else:
        from maas_gateway.metering.sql_store import SqlLedgerStore

        store = SqlLedgerStore(database)
    return LedgerWriter(
        store,
        Spool(Path(settings.spool_dir)),
        flush_interval=settings.flush_interval,
        batch_size=settings.batch_size,
        max_buffer=settings.max_buffer_records,
        spool_commit_interval=settings.spool_commit_interval,
    )


def _authenticator(
    config: GatewayConfig, keys: KeyService, users: UserDirectory, oidc: OIDCVerifier | None = None
) -> Authenticator:
    """Configuration-file keys first, then lifecycle keys from the key service."""
    if oidc is None and config.oidc.issuers:
        oidc = OIDCVerifier(config.oidc)
    store = LayeredKeyStore(InMemoryKeyStore(key_records(config)), keys)
    return Authenticator(store, users, user_policy(config), oidc)


@dataclass
class Components:
    config: GatewayConfig
    router: Router
    pipeline: Pipeline
    limiter: Limiter | None
    ledger: LedgerWriter
    metrics: GatewayMetrics | None
    observers: ExchangeObservers
    admin: AdminGuard
    keys: KeyService
    users: UserDirectory
    database: Database | None
    watcher: IdentityChangeWatcher | None = None
    # /metrics names users: on the API port only with metrics.on_api_port, and then only for the admin.
    metrics_on_api_port: MetricsEndpoint | None = None
    _purger: asyncio.Task[None] | None = None
    _watching: asyncio.Task[None] | None = None
    _publisher: asyncio.Task[None] | None = None
    _retired: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        server = self.config.server
        tls = None
        if server.upstream_ca_bundle is not None or server.upstream_client_cert is not None:
            tls = tls_context(
                ca_bundle=server.upstream_ca_bundle,
                client_cert=server.upstream_client_cert,
                client_key=server.upstream_client_key,
            )
        self.pipeline.transport = HttptoolsTransport(
            connect_timeout=server.upstream_connect_timeout,
            read_timeout=server.upstream_read_timeout,
            max_connections=server.upstream_max_connections,
            idle_timeout=server.upstream_idle_timeout,
            tls=tls,
        )
        await self.ledger.start()
        self._purger = asyncio.create_task(self._purge_expired_keys(), name="key-purger")
        if self.watcher is not None:
            self._watching = asyncio.create_task(self.watcher.run(), name="identity-changes")
        if self.metrics is not None and self.metrics.shared_directory is not None:
            self._publisher = asyncio.create_task(
                self._publish_metrics(self.metrics), name="metrics-publisher"
            )

    def admin_services(self) -> AdminServices:
        """The narrow set of services the admin API gets; reloaded values are read when used."""

        async def authenticate(credential: str) -> Identity:
            return await self.pipeline.authenticator.authenticate(credential)

        return AdminServices(
            keys=self.keys,
            users=self.users,
            ledger=self.ledger,
            failures=self.pipeline.failures,
            identify=self.pipeline.identify,
            authenticate=authenticate,
            address=self.pipeline.address,
            guard=lambda: self.admin,
            config=lambda: self.config,
        )

    def forget_changed(self, change: IdentityChange) -> None:
        """What another process changed stops being trusted here (see ``IdentityChangeWatcher``)."""
        if change.kind == "key":
            self.keys.forget(key_hash=change.subject)
        elif change.kind == "user":
            self.users.forget(change.subject)
        else:
            self.keys.forget_unknown()
            self.users.forget(change.subject)

    async def _publish_metrics(self, metrics: GatewayMetrics) -> None:
        """As one of several workers, copy the ledger's and limit storage's values where a scrape sees them.

        At once when the worker starts (so even a worker killed in its first second is accounted for), then
        once a second: these are operational counters, and a second's delay costs nothing on the hot path.
        """
        while True:
            metrics.publish()
            await asyncio.sleep(1.0)

    async def _purge_expired_keys(self) -> None:
        while True:
            try:
                purged = await self.keys.purge()
            except Exception:
                logger.exception("Purging expired API keys failed; trying again later.")
            else:
                if purged:
                    logger.info("Purged %d expired or revoked API keys.", purged)
            await asyncio.sleep(self.config.keys.purge_interval)

    async def stop(self) -> None:
        self.observers.access_log.flush()
        for task in (self._purger, self._watching, self._publisher):
            if task is not None:
                task.cancel()
        if self.watcher is not None:
            await self.watcher.aclose()
        await self.users.drain()
        try:
            await self.ledger.stop()
        finally:
            if self.metrics is not None:
                self.metrics.close()  # after the ledger's last flush, so its counts are published
            if self.pipeline.transport is not None:
                await self.pipeline.transport.aclose()
            if self.limiter is not None:
                await self.limiter.storage.aclose()
            if self.database is not None:
                await self.database.aclose()
            await self.pipeline.authenticator.aclose()
            self.pipeline.bodies.close()

    def admin_only(self, scope: Scope) -> None:
        """Raise 401 (403 with no admin key set) unless the request carries the admin key.

        ``self.admin`` is read per request, since a reload replaces it.
        """
        self.admin.check(parse_authorization(request_header(scope, b"authorization")))

    async def healthy(self) -> bool:
        return self.limiter is None or await self.limiter.storage.ping()

    def _retire(self, authenticator: Authenticator) -> None:
        """Close a replaced authenticator's HTTP session once requests using it have had time to end."""

        async def close_later() -> None:
            await asyncio.sleep(30)
            await authenticator.aclose()

        task = asyncio.get_running_loop().create_task(close_later())
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    def reconfigure(self, config: GatewayConfig) -> list[str]:
        """Apply a new configuration to a running gateway without dropping requests or counters.

        Keys, models, routes, prices, tiers and limits change at once (requests in flight finish under
        the objects they started with). Settings bound to open resources (server address, timeouts,
        limit storage, database) need a restart; the returned list names those that changed.
        """
        admin = AdminGuard.from_config(config.admin)  # may refuse (ConfigError) before anything changes
        applied_live = {"access_log", "max_body_bytes", "trusted_proxies"}
        needs_restart = [
            name
            for name in ("limits", "database", "metrics", "keys", "security")
            if getattr(self.config, name) != getattr(config, name)
        ]
        if self.config.server.model_dump(exclude=applied_live) != config.server.model_dump(
            exclude=applied_live
        ):
            needs_restart.insert(0, "server")
        self.router = Router(config.models)
        self.pipeline.router = self.router
        previous = self.pipeline.authenticator
        if config.oidc == self.config.oidc:
            # Same issuers: keep the verifier, its HTTP session and its cached signing keys.
            self.pipeline.authenticator = _authenticator(config, self.keys, self.users, previous.oidc)
        else:
            self.pipeline.authenticator = _authenticator(config, self.keys, self.users)
            self._retire(previous)
        self.pipeline.max_body_bytes = config.server.max_body_bytes
        self.pipeline.trusted_proxies = TrustedProxies(config.server.trusted_proxies)
        if self.limiter is not None:
            self.limiter.rules = RuleBook(config.tiers, config.users)
        self.observers.pricing = {m.name: m.pricing for m in config.models if m.pricing is not None}
        self.observers.access_log.enabled = config.server.access_log
        self.admin = admin
        self.config = config
        return needs_restart


def build_components(config: GatewayConfig) -> Components:
    router = Router(config.models)
    limiter = None
    if config.limits.enabled:
        limiter = Limiter(_storage(config.limits), RuleBook(config.tiers, config.users))
    database = _database(config.database)
    repository, signal = _key_repository(config, database)
    keys = KeyService(repository, config.keys)
    users = UserDirectory(repository, ttl=config.keys.cache_ttl)
    throttle = config.security.auth_failures
    failures = FailureThrottle(burst=throttle.burst, per=throttle.per, max_addresses=throttle.max_addresses)
    pipeline = Pipeline(
        authenticator=_authenticator(config, keys, users),
        router=router,
        transport=None,
        limiter=limiter,
        max_body_bytes=config.server.max_body_bytes,
        failures=FailureGate(failures),
        trusted_proxies=TrustedProxies(config.server.trusted_proxies),
    )
    ledger = _ledger(config.database, database)
    metrics = None
    if config.metrics.enabled:
        metrics = GatewayMetrics(user_label=config.metrics.user_label, shared_directory=shared_directory())
    if metrics is not None:
        _watch(metrics, limiter, ledger)
        _watch_failures(metrics, failures)
    observers = ExchangeObservers(
        AccessLog(config.server.access_log),
        metrics,
        ledger,
        {m.name: m.pricing for m in config.models if m.pricing is not None},
    )
    admin = AdminGuard.from_config(config.admin)
    components = Components(
        config, router, pipeline, limiter, ledger, metrics, observers, admin, keys, users, database
    )
    if database is not None:
        components.watcher = IdentityChangeWatcher(
            repository,
            components.forget_changed,
            poll_interval=config.keys.change_poll_interval,
            signal=signal,
        )
    if metrics is not None and config.metrics.on_api_port:
        components.metrics_on_api_port = MetricsEndpoint(metrics.render, components.admin_only)
    return components


def _watch(metrics: GatewayMetrics, limiter: Limiter | None, ledger: LedgerWriter) -> None:
    storage = limiter.storage if limiter is not None else None
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


def _watch_failures(metrics: GatewayMetrics, throttle: FailureThrottle) -> None:
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
