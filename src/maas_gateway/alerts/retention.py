"""Settled alerts past the outbox's retention, purged in batches beside the raw usage records' pruning.

An alert is purged once it is delivered or given up and its window ended at least the retention ago
(``alerts.outbox_retention``, 30 days by default). The outbox keeps the horizon and refuses any alert of
a window that ended by it, so a purge never lets a threshold fire twice in one window (outbox.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from maas_gateway.alerts.outbox import AlertOutbox

__all__ = ["OutboxRetention"]

logger = logging.getLogger("maas_gateway.alerts")


class OutboxRetention:
    def __init__(
        self,
        outbox: AlertOutbox,
        retention: Callable[[], float | None],
        *,
        batch_size: Callable[[], int] = lambda: 5000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self._retention = retention
        self._batch_size = batch_size
        self._clock = clock

    async def purge_once(self) -> int:
        """Purge every settled alert past the retention, batch after batch; return how many went."""
        retention = self._retention()
        if retention is None:
            return 0
        ended_by = self._clock() - retention
        limit = self._batch_size()
        purged = 0
        while True:
            count = await self.outbox.purge(ended_by, limit=limit)
            purged += count
            if count < limit:
                break
            await asyncio.sleep(0)  # let the sender and the notifier in between batches
        if purged:
            logger.info("Purged %d settled alerts whose window ended over the retention ago.", purged)
        return purged

    async def run(self, interval: Callable[[], float]) -> None:
        """Purge every ``interval()`` seconds until cancelled; a failure is logged and tried again later."""
        while True:
            try:
                await self.purge_once()
            except Exception:
                logger.exception("Purging the alert outbox failed; trying again later.")
            await asyncio.sleep(interval())
