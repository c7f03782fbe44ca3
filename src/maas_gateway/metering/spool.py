"""A local file of usage records that could not reach the database: the last line of defence.

Records are appended as JSON lines and fsynced, so a crash after spooling loses nothing. They are
replayed (idempotently, by request id) once the database answers again, and on the next start.
"""

from __future__ import annotations

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
        if not records:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        data = b"".join(orjson.dumps(record.to_dict()) + b"\n" for record in records)
        with self.path.open("ab") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())

    def pending(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0

    def claim(self) -> list[Path]:
        """Files of records to replay, oldest first: the current spool is moved aside under a unique
        name (so records spooled meanwhile start a new file), together with any claimed earlier whose
        replay did not finish. The caller deletes each file once its records are stored."""
        if self.pending():
            os.replace(self.path, self.directory / f"usage-spool.replay-{time.time_ns()}-{uuid.uuid4().hex}")
        if not self.directory.exists():
            return []
        return sorted(self.directory.glob("usage-spool.replay-*"))

    @staticmethod
    def read(path: Path) -> list[UsageRecord]:
        """The records in a claimed file. A torn last line (a crash mid-write) is skipped: that record
        was never acknowledged as spooled."""
        records = []
        for line in path.read_bytes().splitlines():
            try:
                records.append(UsageRecord.from_dict(orjson.loads(line)))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
        return records
