"""Every replica and worker forgets a changed key or user within a second of the change.

The database's identity change log (written in the same transaction as each change) is the truth; each
process reads it, from where it last stopped, every ``poll_interval`` and whenever a signal says there is
something new: PostgreSQL's ``NOTIFY`` (sent by the writing transaction) or a Redis channel (published
after it commits) when the limits already use Redis. A missed signal costs at most one poll interval; a
missed read (the database down) costs at most the caches' TTL, which stays the safety net.

On PostgreSQL, numbers are taken before commit, so a change may become visible after a higher-numbered
one: numbers skipped over are read again for ``_GAP_PATIENCE`` seconds before they are given up as rolled
back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from maas_gateway.auth.key_repository import IdentityChange, KeyRepository

__all__ = ["ChangeSignal", "IdentityChangeWatcher"]

logger = logging.getLogger("maas_gateway.keys")

_GAP_PATIENCE = 5.0
_GAPS_TRACKED = 1_000  # a larger jump is a restart of the numbering, not transactions in flight


class ChangeSignal(Protocol):
    """A broadcast that there are new changes to read (what changed is always read from the database)."""

    async def send(self) -> None: ...

    async def listen(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` on every signal until cancelled; reconnect quietly after failures."""
        ...

    async def aclose(self) -> None: ...


class IdentityChangeWatcher:
    def __init__(
        self,
        repository: KeyRepository,
        apply: Callable[[IdentityChange], None],
        *,
        poll_interval: float,
        signal: ChangeSignal | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repository = repository
        self._apply = apply
        self._poll_interval = poll_interval
        self._signal = signal
        self._clock = clock
        self._woken = asyncio.Event()
        self._last = -1  # the highest number read; -1 until the starting point is known
        self._gaps: dict[int, float] = {}  # numbers skipped over → when first missed
        self._failing = False

    def wake(self) -> None:
        self._woken.set()

    async def run(self) -> None:
        listener = asyncio.create_task(self._signal.listen(self.wake)) if self._signal is not None else None
        try:
            while True:
                await self.read_once()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._woken.wait(), self._poll_interval)
                self._woken.clear()
        finally:
            if listener is not None:
                listener.cancel()

    async def read_once(self) -> int:
        """Read and apply what is new; return how many changes were applied."""
        try:
            if self._last < 0:
                self._last = await self._repository.last_change()
                return 0
            floor = min(self._gaps, default=self._last + 1) - 1
            changes = await self._repository.changes_since(floor)
        except Exception as exc:  # noqa: BLE001  # any database failure: the cache TTL covers us meanwhile
            if not self._failing:
                self._failing = True
                logger.warning("Reading identity changes failed (%s); retrying.", type(exc).__name__)
            return 0
        if self._failing:
            self._failing = False
            logger.info("Reading identity changes works again.")
        return self._take(changes)

    def _take(self, changes: list[IdentityChange]) -> int:
        now = self._clock()
        applied = 0
        for change in changes:
            if change.seq <= self._last and change.seq not in self._gaps:
                continue  # read before
            self._gaps.pop(change.seq, None)
            if change.seq - self._last <= _GAPS_TRACKED:
                for missing in range(self._last + 1, change.seq):
                    self._gaps.setdefault(missing, now)
            self._last = max(self._last, change.seq)
            self._apply(change)
            applied += 1
        for seq, since in list(self._gaps.items()):
            if now - since > _GAP_PATIENCE:
                del self._gaps[seq]
        return applied

    async def aclose(self) -> None:
        if self._signal is not None:
            await self._signal.aclose()
