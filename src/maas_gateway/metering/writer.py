"""Writing usage records off the hot path: buffered in memory, flushed in batches, never lost.

``submit`` only appends to a deque, so a request never waits on the database or the disk. A background
task flushes every ``flush_interval`` (or as soon as a batch is full); a crash while the database takes
writes loses at most the records of the last ``flush_interval``.

Once a write fails, or hangs for longer than a second, the ledger is in outage mode (``OutagePolicy``):
the records in memory go to the spool at once, and from then on a group commit every
``spool_commit_interval`` appends whatever arrived since the last one, in one write and one fsync, on a
worker thread. A SIGKILL during an outage thus loses at most one commit interval's records; a graceful
stop loses none. Each flush replays the spool (idempotently, by request id) and the first that succeeds
ends the outage. A start replays what an earlier run spooled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from maas_gateway.metering.outage import OutagePolicy
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
        spool_commit_interval: float = 0.02,
        outage: OutagePolicy | None = None,
    ) -> None:
        self.store = store
        self.spool = spool
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.max_buffer = max_buffer
        self.write_timeout = write_timeout
        self.spool_commit_interval = spool_commit_interval
        self.outage = outage or OutagePolicy()
        self.written = 0
        self.spooled = 0
        self.failures = 0
        self.dropped = 0
        self._buffer: deque[UsageRecord] = deque()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()  # one flush at a time
        self._commit_lock = asyncio.Lock()  # one group commit at a time
        self._watch = asyncio.Event()  # set while the committer must look: a write in flight, or an outage
        self._closing = False
        self._in_flight: list[UsageRecord] = []  # the batch a flush is writing, out of the buffer
        self._in_flight_spooled = False
        self._task: asyncio.Task[None] | None = None
        self._committer: asyncio.Task[None] | None = None
        self._store_ready = False
        self._spool_announced = False

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
        self._committer = asyncio.create_task(self._commit_loop(), name="ledger-spool-commit")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Flush everything; whatever the database will not take in the grace period goes to the spool.
        During an outage the records go to the spool first, so the grace period cannot cost any."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._committer is not None:
            # Not cancelled: a commit in progress finishes, so its records are on disk before we go on.
            self._closing = True
            self._watch.set()
            await self._committer
        if self.outage.down:
            await self.commit()
        flushed = False
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_seconds):
                flushed = await self.flush()
        if not flushed:
            await self.commit()
        await self.store.aclose()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_interval):
                    await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def _commit_loop(self) -> None:
        # A fixed cadence: the interval runs from one commit's start to the next, so the fsync's own
        # time does not widen what a crash can lose.
        loop = asyncio.get_running_loop()
        while not self._closing:
            await self._watch.wait()
            started = loop.time()
            if self.outage.spooling():
                await self.commit()
            await asyncio.sleep(max(0.0, self.spool_commit_interval - (loop.time() - started)))

    async def commit(self) -> None:
        """Group commit: append every buffered record (and a stalled flush's batch) to the spool in one
        write and one fsync, on a worker thread so a slow disk never stalls a request."""
        async with self._commit_lock:
            records = list(self._buffer)
            self._buffer.clear()
            if self._in_flight and not self._in_flight_spooled:
                # A copy: should the stalled write succeed after all, the replay skips these ids.
                records.extend(self._in_flight)
                self._in_flight_spooled = True
            if not records:
                return
            try:
                await asyncio.to_thread(self.spool.append, records)
            except Exception as exc:  # noqa: BLE001  # a full or broken disk: keep the records in memory
                self._keep(records, exc)
                return
            if not self._spool_announced:
                self._spool_announced = True  # once per outage: a commit every 20 ms must not flood the log
                logger.warning(
                    "Spooled %d usage records to %s; they are stored once the database answers.",
                    len(records),
                    self.spool.path,
                )
            self.spooled += len(records)

    async def flush(self) -> bool:
        """Write the spool and the buffer; return whether the database took everything."""
        async with self._lock:
            self.outage.write_started()
            self._watch.set()
            try:
                async with asyncio.timeout(self.write_timeout):
                    await self._write_all()
            except Exception as exc:  # noqa: BLE001  # any database or driver failure must keep the records
                self.failures += 1
                if self.outage.failed():
                    logger.error(
                        "The usage ledger cannot write (%s: %s); records go to the spool every %.0f ms "
                        "until it writes again.",
                        type(exc).__name__,
                        _first_line(exc),
                        self.spool_commit_interval * 1000,
                    )
                await self.commit()  # the records in memory at the failure go to disk now
                return False
            finally:
                self.outage.write_ended()
            self._spool_announced = False
            if self.outage.succeeded():
                logger.warning("The usage ledger writes again; spooled records have been stored.")
            self._watch.clear()
            return True

    async def _write_all(self) -> None:
        if not self._store_ready:
            await self.store.start()
            self._store_ready = True
        for path in await asyncio.to_thread(self.spool.claim):
            records = await asyncio.to_thread(Spool.read, path)
            for start in range(0, len(records), self.batch_size):
                await self.store.write(records[start : start + self.batch_size])
            path.unlink(missing_ok=True)  # another worker may have replayed it too
            self.written += len(records)
        if self.outage.down:
            return  # the spool was the probe; the buffer goes there too until the database answers
        while self._buffer:
            await self._write_batch()

    async def _write_batch(self) -> None:
        count = min(self.batch_size, len(self._buffer))
        batch = [self._buffer.popleft() for _ in range(count)]
        self._in_flight, self._in_flight_spooled = batch, False
        try:
            await self.store.write(batch)
        except BaseException:
            if not self._in_flight_spooled:  # put back in front, to be written or spooled
                self._buffer.extendleft(reversed(batch))
            raise
        finally:
            self._in_flight = []
        self.written += len(batch)

    def _keep(self, records: list[UsageRecord], exc: Exception) -> None:
        """The spool failed too: keep records in memory up to ``max_buffer``, then drop the oldest."""
        self._buffer.extendleft(reversed(records))
        excess = len(self._buffer) - self.max_buffer
        for _ in range(max(0, excess)):
            self._buffer.popleft()
        self.dropped += max(0, excess)
        logger.error(
            "The usage spool cannot be written (%s: %s); %d records wait in memory, %d dropped so far.",
            type(exc).__name__,
            exc,
            len(self._buffer),
            self.dropped,
        )


def _first_line(exc: Exception) -> str:
    """A driver's message without the SQL and parameters SQLAlchemy appends (they name users)."""
    return str(exc).strip().split("\n", 1)[0] or "timeout"
