"""A local file of usage records that could not reach the database: the last line of defence.

Records are appended as JSON lines and fsynced, so a crash after spooling loses nothing. They are
replayed (idempotently, by request id) once the database answers again, and on the next start.
"""

from __future__ import annotations

import os
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

    def take(self) -> tuple[Path, list[UsageRecord]] | None:
        """Move the spool aside and return its records; the caller deletes the file once stored.

        A torn last line (a crash mid-write) is skipped: its record was never acknowledged as spooled.
        """
        if not self.pending():
            return None
        claimed = self.path.with_suffix(f".replay-{os.getpid()}")
        os.replace(self.path, claimed)
        records = []
        for line in claimed.read_bytes().splitlines():
            try:
                records.append(UsageRecord.from_dict(orjson.loads(line)))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue
        return claimed, records

    def leftovers(self) -> list[Path]:
        """Replay files of an earlier run that stopped before storing them."""
        if not self.directory.exists():
            return []
        return sorted(self.directory.glob("usage-spool.replay-*"))
