"""A local file of usage records that could not reach the database: the last line of defence.

Records are appended as JSON lines and fsynced, so a crash after spooling loses nothing. They are
replayed (idempotently, by request id) once the database answers again, and on the next start.

Several processes may share the directory (``maas serve --workers N``), and one process appends from a
thread while its event loop claims files. An exclusive ``flock`` on the spool file orders the two: a
claim waits for an append in progress, and an append that finds its file claimed (renamed) under it
starts again on a fresh file, so no record is written to a file that is already being replayed.
"""

from __future__ import annotations

import fcntl
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import orjson

from maas_gateway.metering.records import UsageRecord

__all__ = ["Spool"]


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / "usage-spool.jsonl"

    def append(self, records: Sequence[UsageRecord]) -> None:
        """Append ``records`` with one write and one fsync. Blocking: call it off the event loop."""
        if not records:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        data = b"".join(orjson.dumps(record.to_dict()) + b"\n" for record in records)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if not self._is_current(fd):
                    continue  # claimed between open and lock: its records are being replayed
                size = os.fstat(fd).st_size
                # A crash mid-write leaves a torn last line; end it, or the first record here would
                # be glued to it and skipped on replay.
                head = b"\n" if size and os.pread(fd, 1, size - 1) != b"\n" else b""
                _write_all(fd, head + data)
                os.fsync(fd)
            finally:
                os.close(fd)  # releases the lock
            if size == 0:
                self._sync_directory()  # a new file: its name must survive a power cut too
            return

    def pending(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0

    def claim(self) -> list[Path]:
        """Files of records to replay, oldest first: the current spool is moved aside under a unique
        name (so records spooled meanwhile start a new file), together with any claimed earlier whose
        replay did not finish. The caller deletes each file once its records are stored. Blocking."""
        if self.pending():
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                fd = -1  # another process claimed it first
            if fd >= 0:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)  # waits for an append in progress
                    if self._is_current(fd):
                        target = f"usage-spool.replay-{time.time_ns()}-{uuid.uuid4().hex}"
                        os.replace(self.path, self.directory / target)
                finally:
                    os.close(fd)
        if not self.directory.exists():
            return []
        return sorted(self.directory.glob("usage-spool.replay-*"))

    @staticmethod
    def read(path: Path) -> list[UsageRecord]:
        """The records in a claimed file. A torn line (a crash mid-write) is skipped: that record was
        never acknowledged as spooled. A file another process has replayed and deleted meanwhile has
        no records left to replay."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []
        records = []
        for line in data.splitlines():
            try:
                records.append(UsageRecord.from_dict(orjson.loads(line)))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
        return records

    def _is_current(self, fd: int) -> bool:
        """Whether the open file ``fd`` is still the one at ``self.path``."""
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def _sync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
