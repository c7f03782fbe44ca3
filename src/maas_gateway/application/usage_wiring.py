"""The ledger's background work beside the writer: reading the backends' token counters, watching the
drift for the gauge, answering reconciliations (``GET /admin/usage/reconcile``), and pruning raw records
past ``database.raw_retention``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from maas_gateway.application.backend_polling import TransportFetch
from maas_gateway.application.background import BackgroundTasks
from maas_gateway.config.settings import DatabaseSettings
from maas_gateway.database import Database
from maas_gateway.metering import LedgerWriter
from maas_gateway.metering.counter_recorder import CounterRecorder
from maas_gateway.metering.drift_monitor import DriftMonitor
from maas_gateway.metering.readings import BackendReadings, InMemoryBackendReadings
from maas_gateway.metering.reconcile import Reconciliation, reconcile
from maas_gateway.metering.retention import RawRetention
from maas_gateway.metering.store import LedgerBackendTotals, RawRecordPruning
from maas_gateway.metrics import GatewayMetrics
from maas_gateway.upstream import UpstreamTransport

__all__ = ["UsageReconciliation"]


class UsageReconciliation:
    def __init__(
        self,
        ledger: LedgerWriter,
        database: Database | None,
        transport: UpstreamTransport,
        settings: Callable[[], DatabaseSettings],
        backends: Callable[[], Iterable[str]],
        served_names: Callable[[], Mapping[str, str]],
    ) -> None:
        store = ledger.store
        if not isinstance(store, LedgerBackendTotals) or not isinstance(store, RawRecordPruning):
            raise TypeError("The ledger's store can neither total usage by backend nor prune raw records.")
        self.totals: LedgerBackendTotals = store
        self.readings: BackendReadings
        if database is None:
            self.readings = InMemoryBackendReadings()
        else:
            from maas_gateway.metering.sql_readings import SqlBackendReadings

            self.readings = SqlBackendReadings(database)
        self._settings = settings
        self._served_names = served_names
        self.recorder = CounterRecorder(self.readings, TransportFetch(transport), backends)
        self.monitor = DriftMonitor(self.totals, self.readings, served_names)
        self.retention = RawRetention(
            store,
            self.readings,
            lambda: settings().raw_retention,
            batch_size=lambda: settings().prune_batch_size,
        )

    def watch(self, metrics: GatewayMetrics) -> None:
        metrics.watch_family(
            "gauge",
            "maas_usage_drift_ratio",
            "Drift of the usage ledger's tokens from the backend's own counters over the last hour, "
            "|backend - ledger| / max(backend, ledger); over 0.01 is a warning.",
            ["backend", "model"],
            self.monitor.gauge,
            combine="max",
        )

    def start(self, background: BackgroundTasks) -> None:
        background.start(
            "usage-retention", lambda: self.retention.run(lambda: self._settings().prune_interval)
        )
        if self._settings().counter_interval is None:
            return
        background.start(
            "backend-token-counters",
            lambda: self.recorder.run(lambda: self._settings().counter_interval or 60.0, self._after_round),
        )

    async def _after_round(self) -> None:
        await self.monitor.check()

    async def reconcile(self, since: float, until: float) -> list[Reconciliation]:
        return await reconcile(self.totals, self.readings, since, until, self._served_names())
