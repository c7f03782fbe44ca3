"""The drift of the last hour, per backend and model, for the ``maas_usage_drift_ratio`` gauge.

After each round of counter readings the gateway reconciles the trailing ``window`` and keeps each
series' drift for the gauge to read at scrape time; a series that goes over 1 % is logged as a warning
once (and once more when it comes back under), not every round.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from maas_gateway.metering.readings import BackendReadings
from maas_gateway.metering.reconcile import DRIFT_WARNING, Reconciliation, reconcile
from maas_gateway.metering.store import LedgerBackendTotals

__all__ = ["DriftMonitor", "warn_about"]

logger = logging.getLogger("maas_gateway.ledger")


def warn_about(row: Reconciliation) -> None:
    """The log line of a drift over the threshold (no user is named: a backend and a model only)."""
    logger.warning(
        "The usage ledger drifts %.2f %% from the token counters of %s for model %r "
        "(ledger %d tokens, backend %d, %d counter resets); over %.0f %% is a warning.",
        (row.drift_ratio or 0.0) * 100,
        row.backend,
        row.model,
        row.ledger_prompt_tokens + row.ledger_completion_tokens,
        (row.backend_prompt_tokens or 0) + (row.backend_generation_tokens or 0),
        row.resets,
        DRIFT_WARNING * 100,
    )


class DriftMonitor:
    def __init__(
        self,
        ledger: LedgerBackendTotals,
        readings: BackendReadings,
        served_names: Callable[[], Mapping[str, str]],
        *,
        window: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ledger = ledger
        self.readings = readings
        self.served_names = served_names
        self.window = window
        self._clock = clock
        self.ratios: dict[tuple[str, str], float] = {}  # the gauge's values, by (backend, model)

    async def check(self) -> list[Reconciliation]:
        now = self._clock()
        rows = await reconcile(self.ledger, self.readings, now - self.window, now, self.served_names())
        ratios = {(row.backend, row.model): row.drift_ratio for row in rows if row.drift_ratio is not None}
        for key, ratio in ratios.items():
            was_over = self.ratios.get(key, 0.0) > DRIFT_WARNING
            if ratio > DRIFT_WARNING and not was_over:
                warn_about(next(row for row in rows if (row.backend, row.model) == key))
            elif ratio <= DRIFT_WARNING and was_over:
                logger.info("The usage ledger agrees again with %s for model %r.", *key)
        self.ratios = ratios
        return rows

    def gauge(self) -> dict[tuple[str, ...], float]:
        """``maas_usage_drift_ratio``'s series."""
        return {(backend, model): ratio for (backend, model), ratio in self.ratios.items()}
