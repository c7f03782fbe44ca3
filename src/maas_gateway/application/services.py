"""The gateway's long-lived services, built once from the settings that need a restart to change.

Everything here holds open resources or state that must survive a reload: connections to the database
and the limit storage, the key and user caches, the ledger's buffer, the metrics, the upstream pool, the
backends' health and load. What a reload replaces is in ``snapshots.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from maas_gateway.application.alerts_wiring import Alerts, build_alerts
from maas_gateway.audit import AuditLog, InMemoryAuditLog
from maas_gateway.auth.change_watcher import ChangeSignal
from maas_gateway.auth.key_repository import KeyRepository
from maas_gateway.auth.key_service import KeyService
from maas_gateway.auth.memory_key_repository import InMemoryKeyRepository
from maas_gateway.auth.throttle import FailureThrottle
from maas_gateway.auth.user_directory import UserDirectory
from maas_gateway.balancing import BackendRegistry
from maas_gateway.capacity import CapacityGate, CapacityStorage, InMemoryCapacityStorage
from maas_gateway.config.schema import DatabaseSettings, GatewayConfig, LimitsSettings, ServerSettings
from maas_gateway.database import Database
from maas_gateway.limits import InMemoryLimitStorage, LimitStorage
from maas_gateway.limits.resilient import ResilientStorage
from maas_gateway.metering import InMemoryLedgerStore, LedgerStore, LedgerWriter, Spool
from maas_gateway.metering.memory_reports import InMemoryUsageReports
from maas_gateway.metering.reports import UsageReports
from maas_gateway.metrics import GatewayMetrics
from maas_gateway.metrics.multiprocess import shared_directory
from maas_gateway.plans import InMemoryPlanRequestStore, PlanRequestStore
from maas_gateway.proxy.response_owners import MemoryResponseOwners, ResponseOwners
from maas_gateway.teams import InMemoryTeamStore, TeamStore
from maas_gateway.upstream import HttptoolsTransport, UpstreamTransport, tls_context

__all__ = ["Services", "build_services", "upstream_transport"]


@dataclass(frozen=True, slots=True)
class Services:
    database: Database | None
    repository: KeyRepository
    audit: AuditLog  # administrators' actions
    plan_requests: PlanRequestStore  # users' requests for another tier
    teams: TeamStore  # teams (cost centres) and their members
    change_signal: ChangeSignal | None  # how other processes' identity changes are heard, if at all
    keys: KeyService
    users: UserDirectory
    limit_storage: LimitStorage | None  # None when limits are off
    capacity: CapacityGate  # idle until the configuration caps something
    ledger: LedgerWriter
    usage_reports: UsageReports  # the portal's reads: hourly rollups of the ledger's store
    metrics: GatewayMetrics | None
    failures: FailureThrottle
    transport: UpstreamTransport
    poll_transport: UpstreamTransport  # the health checks' and load scrapes' own connections
    backends: BackendRegistry  # every model's backends, kept across reloads
    response_owners: ResponseOwners  # which backend stored which response, shared where limits are
    alerts: Alerts | None  # budget alerts, when configured


def build_services(config: GatewayConfig, transport: UpstreamTransport | None = None) -> Services:
    """Build every service; ``transport`` replaces the pools of backend connections (tests pass an
    in-memory one). A CA bundle that cannot be read raises ``ValueError`` here, before anything runs.

    The background polls of the backends get a pool of their own, with the same settings: they must
    neither wait for a connection behind a busy gateway's requests (and time out, and take healthy
    backends out) nor take the idle connections the requests would reuse."""
    poll_transport = transport or upstream_transport(config.server)  # first: it may refuse the settings
    transport = transport or upstream_transport(config.server)
    database = _database(config.database)
    repository, signal = _key_repository(config, database)
    throttle = config.security.auth_failures
    metrics = None
    if config.metrics.enabled:
        metrics = GatewayMetrics(user_label=config.metrics.user_label, shared_directory=shared_directory())
    capacity = CapacityGate(_capacity_storage(config.limits), events=metrics)
    ledger, usage_reports = _ledger(config.database, database)
    alerts = build_alerts(config.alerts, database, metrics)  # may refuse (a secret not set)
    return Services(
        database=database,
        repository=repository,
        audit=_audit_log(database),
        plan_requests=_plan_requests(database),
        teams=_teams(database),
        change_signal=signal,
        keys=KeyService(repository, config.keys),
        users=UserDirectory(repository, ttl=config.keys.cache_ttl),
        limit_storage=_storage(config.limits, scoped=config.has_scoped_limits)
        if config.limits.enabled
        else None,
        capacity=capacity,
        ledger=ledger,
        usage_reports=usage_reports,
        metrics=metrics,
        failures=FailureThrottle(
            burst=throttle.burst, per=throttle.per, max_addresses=throttle.max_addresses
        ),
        transport=transport,
        poll_transport=poll_transport,
        backends=BackendRegistry(),
        response_owners=_response_owners(config.limits),
        alerts=alerts,
    )


def upstream_transport(server: ServerSettings) -> UpstreamTransport:
    """The pool of connections to backends; a CA bundle or client certificate that cannot be used stops
    the start here with a sentence naming the file."""
    tls = None
    if server.upstream_ca_bundle is not None or server.upstream_client_cert is not None:
        tls = tls_context(
            ca_bundle=server.upstream_ca_bundle,
            client_cert=server.upstream_client_cert,
            client_key=server.upstream_client_key,
        )
    return HttptoolsTransport(
        connect_timeout=server.upstream_connect_timeout,
        read_timeout=server.upstream_read_timeout,
        max_connections=server.upstream_max_connections,
        idle_timeout=server.upstream_idle_timeout,
        tls=tls,
    )


def _storage(settings: LimitsSettings, *, scoped: bool = False) -> LimitStorage:
    """``scoped``: some limit counts beyond one user (a team's, a key's, a tier's, everyone's), so on a
    Redis Cluster every counter goes to one slot (see ``RedisLimitStorage``)."""
    if settings.storage == "memory":
        return InMemoryLimitStorage()
    from maas_gateway.limits.redis_storage import RedisLimitStorage

    one_slot = scoped and settings.storage.startswith("redis+cluster://")
    return ResilientStorage(
        RedisLimitStorage(settings.storage, timeout=settings.storage_timeout, one_slot=one_slot),
        policy=settings.failure_policy,
        timeout=settings.storage_timeout,
        retry_interval=settings.retry_interval,
        # The standalone connection keeps its own time; redis-py's cluster client retries beyond it.
        primary_times_out=not settings.storage.startswith("redis+cluster://"),
    )


def _capacity_storage(settings: LimitsSettings) -> CapacityStorage:
    """Slots live where limit counters do (`limits.storage`), under the same failure policy; the Redis
    connection is opened on first use, so a gateway that caps nothing never makes one."""
    if settings.storage == "memory":
        return InMemoryCapacityStorage()
    from maas_gateway.capacity.redis_storage import RedisCapacityStorage
    from maas_gateway.capacity.resilient import ResilientCapacityStorage

    return ResilientCapacityStorage(
        RedisCapacityStorage(settings.storage, timeout=settings.storage_timeout),
        policy=settings.failure_policy,
        timeout=settings.storage_timeout,
        retry_interval=settings.retry_interval,
        primary_times_out=not settings.storage.startswith("redis+cluster://"),
    )


def _response_owners(settings: LimitsSettings) -> ResponseOwners:
    """Where limits are shared (Redis), so are stored responses' owners: any worker or replica then
    finds the backend that holds one. The connection is opened on first use."""
    if settings.storage == "memory":
        return MemoryResponseOwners()
    from maas_gateway.proxy.redis_response_owners import RedisResponseOwners

    return RedisResponseOwners(settings.storage, timeout=settings.storage_timeout)


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


def _audit_log(database: Database | None) -> AuditLog:
    if database is None:
        return InMemoryAuditLog()
    from maas_gateway.audit.sql_log import SqlAuditLog

    return SqlAuditLog(database)


def _plan_requests(database: Database | None) -> PlanRequestStore:
    if database is None:
        return InMemoryPlanRequestStore()
    from maas_gateway.plans.sql_store import SqlPlanRequestStore

    return SqlPlanRequestStore(database)


def _teams(database: Database | None) -> TeamStore:
    if database is None:
        return InMemoryTeamStore()
    from maas_gateway.teams.sql_store import SqlTeamStore

    return SqlTeamStore(database)


def _ledger(settings: DatabaseSettings, database: Database | None) -> tuple[LedgerWriter, UsageReports]:
    """The writer and the reports over the same store (in memory, the same rollups)."""
    store: LedgerStore
    reports: UsageReports
    if database is None:
        memory = InMemoryLedgerStore()
        store, reports = memory, InMemoryUsageReports(memory.rollups)
    else:
        from maas_gateway.metering.sql_reports import SqlUsageReports
        from maas_gateway.metering.sql_store import SqlLedgerStore

        store, reports = SqlLedgerStore(database), SqlUsageReports(database)
    writer = LedgerWriter(
        store,
        Spool(Path(settings.spool_dir)),
        flush_interval=settings.flush_interval,
        batch_size=settings.batch_size,
        max_buffer=settings.max_buffer_records,
        spool_commit_interval=settings.spool_commit_interval,
    )
    return writer, reports
