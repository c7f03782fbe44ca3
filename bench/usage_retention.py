"""How long pruning raw usage records takes, and what a reconciliation query costs, on SQLite.

    .venv/bin/python bench/usage_retention.py [records]

Stores ``records`` raw records (default 200,000) over 20 days through the ledger's writer path (rollups
included), then prunes the first ten days in batches of 5,000 and reconciles one day by backend.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from maas_gateway.database import Database
from maas_gateway.metering.readings import BackendReading, InMemoryBackendReadings
from maas_gateway.metering.reconcile import reconcile
from maas_gateway.metering.records import UsageRecord
from maas_gateway.metering.retention import RawRetention
from maas_gateway.metering.sql_store import SqlLedgerStore

DAY = 86400
BASE = 1_796_000_000 - 1_796_000_000 % DAY


def record(index: int, count: int) -> UsageRecord:
    return UsageRecord(
        request_id=f"r{index:09d}",
        created_at=BASE + index * (20 * DAY / count),
        user=f"user-{index % 1000}",
        tier="free",
        key_id=f"key-{index % 1000}",
        model=f"model-{index % 10}",
        endpoint="/v1/chat/completions",
        status=200,
        prompt_tokens=100,
        completion_tokens=50,
        total_tokens=150,
        charged_tokens=150,
        cost=0.001,
        streamed=False,
        rate_limited=False,
        usage_estimated=False,
        latency_ms=10.0,
        backend=f"http://backend-{index % 4}:8000",
    )


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        database = Database(f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}")
        store = SqlLedgerStore(database)
        await store.start()
        for start in range(0, count, 5000):
            await store.write([record(index, count) for index in range(start, min(start + 5000, count))])
        readings = InMemoryBackendReadings()
        await readings.record(
            [
                BackendReading(f"http://backend-{b}:8000", f"model-{m}", BASE + at, 0, 0)
                for b in range(4)
                for m in range(10)
                for at in (15 * DAY, 16 * DAY)
            ]
        )
        started = time.perf_counter()
        await reconcile(store, readings, BASE + 15 * DAY, BASE + 16 * DAY, {})
        elapsed_ms = (time.perf_counter() - started) * 1000
        print(f"reconcile one day of {count // 20:,} records: {elapsed_ms:.0f} ms")
        retention = RawRetention(store, readings, lambda: 10.0 * DAY, clock=lambda: BASE + 20 * DAY)
        started = time.perf_counter()
        pruned = await retention.prune_once()
        elapsed = time.perf_counter() - started
        rate = pruned / elapsed
        print(f"pruned {pruned:,} raw records in {elapsed:.1f} s ({rate:,.0f} per second, batches of 5,000)")
        await database.aclose()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000))
