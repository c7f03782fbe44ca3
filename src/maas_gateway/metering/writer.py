"""Writing usage records off the hot path: buffered in memory, flushed in batches, never lost.

``submit`` only appends to a deque, so a request never waits on the database. A background task
flushes every ``flush_interval`` (or as soon as a batch is full). While the database is down, records
stay in memory up to ``max_buffer`` and then go to the spool file; both are written once it returns.
A graceful stop flushes everything, or spools what the database will not take. A crash loses at most
the records of the last ``flush_interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from maas_gateway.metering.records import UsageRecord
from maas_gateway.metering.spool import Spool
from maas_gateway.metering.store import LedgerStore

__all__ = ["LedgerWriter"]

logger = logging.getLogger("maas_gateway.ledger")


class LedgerWriter:
    def __init__(
        self,
        store: LedgerStore,
        spool: Spool,
        *,
        flush_interval: float = 1.0,
        batch_size: int = 500,
        max_buffer: int = 100_000,
        write_timeout: float = 30.0,
    ) -> None:
        self.store = store
        self.spool = spool
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.max_buffer = max_buffer
        self.write_timeout = write_timeout
        self.written = 0
        self.spooled = 0
        self.failures = 0
        self._buffer: deque[UsageRecord] = deque()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._store_ready = False
        self._down = False

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def submit(self, record: UsageRecord) -> None:
        self._buffer.append(record)
        if len(self._buffer) >= self.batch_size:
            self._wake.set()

    async def start(self) -> None:
        await self.flush()  # replays whatever an earlier run spooled
        self._task = asyncio.create_task(self._run(), name="ledger-writer")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Flush everything; whatever the database will not take in the grace period goes to the spool."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        flushed = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_seconds):
                flushed = await self.flush()
        if not flushed and self._buffer:
            self._spool_all()
        await self.store.aclose()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_interval):
                    await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> bool:
        """Write the spool and the buffer; return whether the database took everything."""
        async with self._lock:
            try:
                async with asyncio.timeout(self.write_timeout):
                    await self._write_all()
            except Exception as exc:  # noqa: BLE001  # any database or driver failure must keep the records
                self.failures += 1
                if not self._down:
                    self._down = True
                    logger.error(
                        "The usage ledger cannot write (%s: %s); records are kept and retried.",
                        type(exc).__name__,
                        exc or "timeout",
                    )
                if len(self._buffer) > self.max_buffer:
                    self._spool_all()
                return False
            if self._down:
                self._down = False
                logger.warning("The usage ledger writes again; kept records have been stored.")
            return True

    async def _write_all(self) -> None:
        if not self._store_ready:
            await self.store.start()
            self._store_ready = True
        for path in self.spool.claim():
            records = self.spool.read(path)
            for start in range(0, len(records), self.batch_size):
                await self.store.write(records[start : start + self.batch_size])
            path.unlink()
            self.written += len(records)
        while self._buffer:
            batch = [self._buffer[i] for i in range(min(self.batch_size, len(self._buffer)))]
            await self.store.write(batch)
            for _ in batch:
                self._buffer.popleft()
            self.written += len(batch)

    def _spool_all(self) -> None:
        records = list(self._buffer)
        self.spool.append(records)
        self._buffer.clear()
        self.spooled += len(records)
        logger.warning("Spooled %d usage records to %s.", len(records), self.spool.path)
