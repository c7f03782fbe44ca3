"""Raw usage records (and the backends' counter readings) past their retention, pruned in batches.

The rollups are kept for good, so a report over pruned hours answers from them exactly as it did
before; what goes is the detail only raw records hold (a user's last calls, ranges that do not start
or end on the hour, reconciliation by backend). Records are pruned by whole hours, older than the
retention rounded down to the hour, one batch per transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from maas_gateway.metering.readings import BackendReadings
from maas_gateway.metering.store import RawRecordPruning

__all__ = ["RawRetention"]

logger = logging.getLogger("maas_gateway.ledger")


class RawRetention:
    def __init__(
        self,
        ledger: RawRecordPruning,
        readings: BackendReadings,
        retention: Callable[[], float | None],
        *,
        batch_size: Callable[[], int] = lambda: 5000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ledger = ledger
        self.readings = readings
        self._retention = retention
        self._batch_size = batch_size
        self._clock = clock

    async def prune_once(self) -> int:
        """Prune everything past the retention, batch after batch; return how many raw records went."""
        retention = self._retention()
        if retention is None:
            return 0
        horizon = self._clock() - retention
        before_hour = int(horizon // 3600)
        limit = self._batch_size()
        pruned = 0
        while True:
            count = await self.ledger.prune_raw(before_hour, limit=limit)
            pruned += count
            if count < limit:
                break
            await asyncio.sleep(0)  # let requests and the writer in between batches
        while True:
            if await self.readings.prune(before_hour * 3600, limit=limit) < limit:
                break
            await asyncio.sleep(0)  # the same between batches of readings
        if pruned:
            logger.info("Pruned %d raw usage records older than the retention; rollups are kept.", pruned)
        return pruned

    async def run(self, interval: Callable[[], float]) -> None:
        """Prune every ``interval()`` seconds until cancelled; a failure is logged and tried again later."""
        while True:
            try:
                await self.prune_once()
            except Exception:
                logger.exception("Pruning raw usage records failed; trying again later.")
            await asyncio.sleep(interval())
