"""The gateway's background work: purging dead keys, hearing other processes' identity changes, and
publishing metrics for the --workers supervisor. Started with the server, cancelled when it stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from maas_gateway.auth.key_service import KeyService
from maas_gateway.metrics import GatewayMetrics
from maas_gateway.portal.session_manager import SessionManager

__all__ = ["BackgroundTasks", "publish_metrics", "purge_expired_keys", "purge_expired_sessions"]

logger = logging.getLogger("maas_gateway")


class BackgroundTasks:
    """Named tasks cancelled together when the gateway stops; a task that fails is logged."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        task = asyncio.get_running_loop().create_task(work(), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error("The background task %s failed.", task.get_name(), exc_info=error)

    def later(self, delay: float, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``work`` after ``delay`` seconds, unless the gateway stops first."""

        async def delayed() -> None:
            await asyncio.sleep(delay)
            await work()

        self.start("delayed", delayed)

    async def cancel(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def purge_expired_keys(keys: KeyService, interval: Callable[[], float]) -> None:
    """Remove expired and revoked keys every ``interval()`` seconds (read each time: a reload may change
    it); a failed purge is logged and tried again later."""
    while True:
        try:
            purged = await keys.purge()
        except Exception:
            logger.exception("Purging expired API keys failed; trying again later.")
        else:
            if purged:
                logger.info("Purged %d expired or revoked API keys.", purged)
        await asyncio.sleep(interval())


async def purge_expired_sessions(sessions: SessionManager, interval: float = 600.0) -> None:
    """Delete expired portal sessions every ``interval`` seconds (a request meeting one deletes it too)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await sessions.purge()
        except Exception:
            logger.exception("Purging expired portal sessions failed; trying again later.")


async def publish_metrics(metrics: GatewayMetrics) -> None:
    """As one of several workers, copy the ledger's and limit storage's values where a scrape sees them.

    At once when the worker starts (so even a worker killed in its first second is accounted for), then
    once a second: these are operational counters, and a second's delay costs nothing on the hot path.
    """
    while True:
        metrics.publish()
        await asyncio.sleep(1.0)
