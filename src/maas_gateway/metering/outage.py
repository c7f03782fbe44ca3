"""When usage records stop waiting in memory for the database and go to the spool instead.

A record in memory dies with the process; a record in the spool survives a SIGKILL. While the database
takes writes, memory is the right place: a flush every ``flush_interval`` costs one round trip and no
fsync. Once a write fails, or one has been in flight for longer than ``stall_after`` (a database that
hangs instead of refusing), every record should reach the disk within one group commit, so a crash loses
at most the records of the last ``spool_commit_interval``. This class only decides; the writer acts.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["OutagePolicy"]


class OutagePolicy:
    def __init__(self, *, stall_after: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.stall_after = stall_after
        self.clock = clock
        self.down = False
        self._writing_since: float | None = None

    def write_started(self) -> None:
        self._writing_since = self.clock()

    def write_ended(self) -> None:
        self._writing_since = None

    @property
    def writing(self) -> bool:
        return self._writing_since is not None

    def failed(self) -> bool:
        """A write failed; True when this starts an outage (the moment to say so in the log)."""
        started = not self.down
        self.down = True
        return started

    def succeeded(self) -> bool:
        """A write succeeded; True when this ends an outage."""
        ended = self.down
        self.down = False
        return ended

    def stalled(self) -> bool:
        """A write has been in flight for longer than ``stall_after``."""
        since = self._writing_since
        return since is not None and self.clock() - since >= self.stall_after

    def spooling(self) -> bool:
        """Records should go to the spool now rather than wait in memory for the database."""
        return self.down or self.stalled()
