"""The application root: builds the gateway once, hands each consumer only what it needs, and reloads
by swapping one reference.

Long-lived services (``services.py``) are built once. What a configuration file decides for requests
(routes, keys, tiers and limits, prices, the admin credential) is an immutable ``Snapshot``
(``snapshots.py``); a reload builds a new one and puts it in force with one assignment, so a request
sees either the old configuration or the new one, never a mixture. Nothing outside this module can
reach the root: the admin API gets ``AdminServices``, the ASGI app gets the pipeline, a function
returning the current snapshot, and the start/stop hooks.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from maas_gateway.admin.actions import AdminActions
from maas_gateway.admin.api import create_admin_app
from maas_gateway.admin.call_log import AdminCallLog
from maas_gateway.admin.json_body import JsonBodyByDefault
from maas_gateway.admin.services import AdminServices
from maas_gateway.application.alerts_wiring import Alerts
from maas_gateway.application.backend_polling import BackendPolling
from maas_gateway.application.background import (
    BackgroundTasks,
    publish_metrics,
    purge_expired_keys,
    purge_expired_sessions,
)
from maas_gateway.application.metrics_wiring import watch_backends, watch_services
from maas_gateway.application.portal_wiring import portal_services
from maas_gateway.application.services import Services, build_services
from maas_gateway.application.snapshots import build_snapshot
from maas_gateway.application.usage_wiring import UsageReconciliation
from maas_gateway.auth import Authenticator, Identity
from maas_gateway.auth.change_watcher import IdentityChangeWatcher
from maas_gateway.auth.credentials import parse_authorization
from maas_gateway.auth.failure_gate import FailureGate
from maas_gateway.auth.key_repository import IdentityChange
from maas_gateway.balancing import polls
from maas_gateway.config import ConfigError, load_config
from maas_gateway.config.schema import GatewayConfig
from maas_gateway.config.unpriced import unpriced_warning
from maas_gateway.http.asgi import Scope, request_header
from maas_gateway.http.forwarded import client_address
from maas_gateway.metrics.endpoint import MetricsEndpoint
from maas_gateway.plans.service import PlanRequestService
from maas_gateway.portal import create_portal_app
from maas_gateway.proxy.access_log import AccessLog
from maas_gateway.proxy.app import GatewayApp
from maas_gateway.proxy.pipeline import Pipeline
from maas_gateway.proxy.snapshot import Snapshot
from maas_gateway.reload_status import ReloadOutcome
from maas_gateway.upstream import UpstreamTransport

__all__ = ["Application"]

logger = logging.getLogger("maas_gateway")

# Settings that a running gateway applies at once although they live under ``server``.
_LIVE_SERVER_SETTINGS = {"access_log", "max_body_bytes", "trusted_proxies"}
# Sections bound to open resources: a change is reported and waits for a restart.
_RESTART_SECTIONS = ("limits", "database", "metrics", "keys", "security", "alerts")
# How long a replaced token verifier stays open for requests that started under it.
_RETIRE_AFTER_SECONDS = 30.0


class Application:
    """The whole gateway for one process. ``asgi`` is what the server runs."""

    def __init__(
        self,
        config: GatewayConfig,
        config_path: Path | None = None,
        *,
        transport: UpstreamTransport | None = None,
    ) -> None:
        self.config_path = config_path
        self._built_for = config  # the settings the services were built with; restarts compare to these
        self.services: Services = build_services(config, transport)
        self._access_log = AccessLog(lambda: self._snapshot.config.server.access_log)
        self._snapshot = build_snapshot(config, self.services, self._access_log)
        self._background = BackgroundTasks()
        self.polling = BackendPolling(self.services.poll_transport)
        self.polling.update(polls(self._snapshot.backends))
        self._retired: list[Authenticator] = []
        services = self.services
        self.reconciliation = UsageReconciliation(
            services.ledger,
            services.database,
            services.poll_transport,
            lambda: self._built_for.database,  # the database section waits for a restart, as the ledger
            lambda: [state.url for each in self._snapshot.backends.values() for state in each.pool.backends],
            lambda: {model.name: model.upstream_model for model in self._snapshot.config.models},
        )
        self._watcher = None
        if services.database is not None:
            self._watcher = IdentityChangeWatcher(
                services.repository,
                self._forget_changed,
                poll_interval=config.keys.change_poll_interval,
                signal=services.change_signal,
            )
        if services.metrics is not None:
            watch_services(services.metrics, services)
            watch_backends(services.metrics, lambda: self._snapshot.backends)
            self.reconciliation.watch(services.metrics)
        self.pipeline = Pipeline(
            services.transport, FailureGate(services.failures), responses=services.response_owners
        )
        admin_services = self._admin_services()
        admin_app = JsonBodyByDefault(create_admin_app(admin_services))
        metrics_endpoint = None
        if services.metrics is not None and config.metrics.on_api_port:
            # /metrics names users: on the API port only when asked, and then only for the admin.
            metrics_endpoint = MetricsEndpoint(services.metrics.render, self._admin_only)
        self.portal = portal_services(services, self.current, admin_services.actions)
        self.asgi = GatewayApp(
            self.current,
            self.pipeline,
            AdminCallLog(admin_app, self._access_log, self._address),
            self,
            metrics_endpoint,
            portal_app=create_portal_app(self.portal),
        )

    def current(self) -> Snapshot:
        """The snapshot in force; read once per request."""
        return self._snapshot

    # -- start and stop (the ASGI lifespan calls these) -------------------------------------------------

    async def start(self) -> None:
        services = self.services
        if (warning := unpriced_warning(self._snapshot.config)) is not None:
            logger.warning(warning)
        await services.ledger.start()
        keys = services.keys
        self._background.start(
            "key-purger", lambda: purge_expired_keys(keys, lambda: self._snapshot.config.keys.purge_interval)
        )
        if self._watcher is not None:
            self._background.start("identity-changes", self._watcher.run)
        self._background.start("capacity-leases", services.capacity.leases.keep)
        if services.alerts is not None:
            await self._start_alerts(services.alerts)
        self._background.start("portal-sessions", lambda: purge_expired_sessions(self.portal.sessions))
        metrics = services.metrics
        if metrics is not None and metrics.shared_directory is not None:
            self._background.start("metrics-publisher", lambda: publish_metrics(metrics))
        self.polling.start()
        self.reconciliation.start(self._background)

    async def stop(self) -> None:
        services = self.services
        self._access_log.flush()
        await self._background.cancel()
        await self.polling.stop()
        if self._watcher is not None:
            await self._watcher.aclose()
        await services.users.drain()
        try:
            await services.ledger.stop()
        finally:
            if services.metrics is not None:
                services.metrics.close()  # after the ledger's last flush, so its counts are published
            await services.transport.aclose()
            if services.poll_transport is not services.transport:
                await services.poll_transport.aclose()
            if services.limit_storage is not None:
                await services.limit_storage.aclose()
            await services.capacity.aclose()
            await services.response_owners.aclose()
            if services.alerts is not None:
                await services.alerts.client.aclose()
            if services.database is not None:
                await services.database.aclose()
            for authenticator in (*self._retired, self._snapshot.authenticator):
                await authenticator.aclose()
            self.pipeline.bodies.close()

    async def _start_alerts(self, alerts: Alerts) -> None:
        """The notifier's writer, the sender and the outbox's purge run in the background; an outbox whose
        database is down now is migrated by their first successful call."""
        try:
            await alerts.outbox.start()
        except Exception as exc:  # noqa: BLE001  # a database down now: the first write migrates it
            logger.warning(
                "The alert outbox is not ready yet (%s); alerts wait in memory.", type(exc).__name__
            )
        self._background.start("alert-outbox-writer", alerts.notifier.run)
        self._background.start("alert-sender", alerts.sender.run)
        # Beside the raw usage records' pruning, as often (usage_wiring.py).
        self._background.start(
            "alert-outbox-retention",
            lambda: alerts.retention.run(lambda: self._snapshot.config.database.prune_interval),
        )

    async def healthy(self) -> bool:
        storage = self.services.limit_storage
        return storage is None or await storage.ping()

    # -- reloads ----------------------------------------------------------------------------------------

    def reload_file(self) -> ReloadOutcome:
        """Re-read the configuration file and apply it (SIGHUP, `maas reload`); log and return the outcome."""
        if self.config_path is None:
            logger.warning("Reload asked, but this gateway runs a built-in configuration; nothing to do.")
            return ReloadOutcome(refusal="This gateway runs a built-in configuration, not a file.")
        try:
            restart = self.apply(load_config(self.config_path))
        except ConfigError as exc:
            logger.error("Reload refused; the running configuration stays in force. %s", exc)
            return ReloadOutcome(refusal=str(exc))
        logger.info("Reloaded %s: models, keys, tiers and limits are in force.", self.config_path)
        if (warning := unpriced_warning(self._snapshot.config)) is not None:
            logger.warning(warning)
        if restart:
            logger.warning("Changes to %s take effect only after a restart.", ", ".join(restart))
        return ReloadOutcome(needs_restart=tuple(restart))

    def apply(self, config: GatewayConfig) -> list[str]:
        """Put ``config`` in force without dropping requests or counters; return what needs a restart.

        Keys, models, routes, prices, tiers and limits change at once (requests in flight finish under
        the snapshot they started with). Settings bound to open resources (server address, timeouts,
        limit storage, database) need a restart; the returned list names those that changed.
        """
        previous = self._snapshot
        snapshot = build_snapshot(config, self.services, self._access_log, previous)  # may refuse
        old = self._built_for
        needs_restart = [name for name in _RESTART_SECTIONS if getattr(old, name) != getattr(config, name)]
        if old.server.model_dump(exclude=_LIVE_SERVER_SETTINGS) != config.server.model_dump(
            exclude=_LIVE_SERVER_SETTINGS
        ):
            needs_restart.insert(0, "server")
        self._snapshot = snapshot
        self.polling.update(polls(snapshot.backends))
        if snapshot.authenticator.oidc is not previous.authenticator.oidc:
            self._retire(previous.authenticator)
        return needs_restart

    def _retire(self, authenticator: Authenticator) -> None:
        """Close a replaced token verifier's HTTP client once requests using it have had time to end."""
        self._retired.append(authenticator)

        async def close() -> None:
            self._retired.remove(authenticator)
            await authenticator.aclose()

        self._background.later(_RETIRE_AFTER_SECONDS, close)

    # -- what the root hands out ------------------------------------------------------------------------

    def _admin_services(self) -> AdminServices:
        """The narrow set of services the admin API gets; reloaded values are read when used."""
        services = self.services

        async def identify(scope: Scope) -> Identity:
            return await self.pipeline.identify(self._snapshot, scope)

        async def authenticate(credential: str) -> Identity:
            return await self._snapshot.authenticator.authenticate(credential)

        plans = PlanRequestService(services.plan_requests, lambda: tuple(self._snapshot.config.tiers))
        actions = AdminActions(
            services.keys,
            services.users,
            plans,
            services.audit,
            lambda: self._snapshot.config,
            teams=services.teams,
        )
        return AdminServices(
            keys=services.keys,
            users=services.users,
            actions=actions,
            audit=services.audit,
            ledger=services.ledger,
            failures=self.pipeline.failures,
            identify=identify,
            authenticate=authenticate,
            address=self._address,
            guard=lambda: self._snapshot.admin,
            config=lambda: self._snapshot.config,
            backend_states=self._backend_states,
            reconcile=self.reconciliation.reconcile,
        )

    def _backend_states(self, model: str) -> list[dict[str, Any]]:
        """How each backend of ``model`` is doing now, as ``GET /admin/models`` shows it."""
        backends = self._snapshot.backends.get(model)
        return [] if backends is None else [state.as_dict() for state in backends.pool.snapshots()]

    def _address(self, scope: Scope) -> str:
        """The client's address, believing X-Forwarded-For from the trusted proxies in force only."""
        return client_address(scope, self._snapshot.trusted_proxies)

    def _admin_only(self, scope: Scope) -> None:
        """Raise 401 (403 with no admin key set) unless the request carries the admin key in force."""
        self._snapshot.admin.check(parse_authorization(request_header(scope, b"authorization")))

    def _forget_changed(self, change: IdentityChange) -> None:
        """What another process changed stops being trusted here (see ``IdentityChangeWatcher``)."""
        services = self.services
        if change.kind == "key":
            services.keys.forget(key_hash=change.subject)
        elif change.kind == "user":
            services.users.forget(change.subject)
        else:
            services.keys.forget_unknown()
            services.users.forget(change.subject)
