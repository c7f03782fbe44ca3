"""Building the gateway's parts from a configuration, and starting and stopping them."""

from __future__ import annotations

from dataclasses import dataclass

from maas_gateway.auth import Authenticator, InMemoryKeyStore, KeyRecord
from maas_gateway.config.schema import GatewayConfig, LimitsSettings
from maas_gateway.limits import InMemoryLimitStorage, Limiter, LimitStorage, RuleBook
from maas_gateway.limits.resilient import ResilientStorage
from maas_gateway.proxy.pipeline import Pipeline
from maas_gateway.proxy.upstream import AiohttpTransport
from maas_gateway.routing import Router

__all__ = ["Components", "build_components", "key_records"]


def key_records(config: GatewayConfig) -> list[KeyRecord]:
    records = []
    for key in config.api_keys:
        digest = key.digest
        models = frozenset(key.models) if key.models is not None else None
        records.append(KeyRecord(digest, key.user, key.tier, key.name, models))
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
    )


@dataclass
class Components:
    config: GatewayConfig
    router: Router
    pipeline: Pipeline
    limiter: Limiter | None

    async def start(self) -> None:
        server = self.config.server
        self.pipeline.transport = AiohttpTransport(
            connect_timeout=server.upstream_connect_timeout,
            read_timeout=server.upstream_read_timeout,
            max_connections=server.upstream_max_connections,
        )

    async def stop(self) -> None:
        if self.pipeline.transport is not None:
            await self.pipeline.transport.aclose()
        if self.limiter is not None:
            await self.limiter.storage.aclose()

    async def healthy(self) -> bool:
        return self.limiter is None or await self.limiter.storage.ping()

    def reconfigure(self, config: GatewayConfig) -> list[str]:
        """Apply a new configuration to a running gateway without dropping requests or counters.

        Keys, models, routes, tiers and limits change at once (requests in flight finish under the
        objects they started with). Settings bound to open resources (server address, timeouts, limit
        storage) need a restart; the returned list names those that changed.
        """
        applied_live = {"access_log", "max_body_bytes"}
        needs_restart = []
        if self.config.server.model_dump(exclude=applied_live) != config.server.model_dump(
            exclude=applied_live
        ):
            needs_restart.append("server")
        if self.config.limits != config.limits:
            needs_restart.append("limits")
        self.router = Router(config.models)
        self.pipeline.router = self.router
        self.pipeline.authenticator = _authenticator(config)
        self.pipeline.max_body_bytes = config.server.max_body_bytes
        if self.limiter is not None:
            self.limiter.rules = RuleBook(config.tiers, config.users)
        self.config = config
        return needs_restart


def _authenticator(config: GatewayConfig) -> Authenticator:
    overrides = {user: o.tier for user, o in config.users.items() if o.tier is not None}
    return Authenticator(InMemoryKeyStore(key_records(config)), overrides)


def build_components(config: GatewayConfig) -> Components:
    authenticator = _authenticator(config)
    router = Router(config.models)
    limiter = None
    if config.limits.enabled:
        limiter = Limiter(_storage(config.limits), RuleBook(config.tiers, config.users))
    pipeline = Pipeline(
        authenticator=authenticator,
        router=router,
        transport=None,
        limiter=limiter,
        max_body_bytes=config.server.max_body_bytes,
    )
    return Components(config, router, pipeline, limiter)
