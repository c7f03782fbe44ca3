"""The usage ledger's sustained insert rate into PostgreSQL (or SQLite), through its own writer.

Creates a throwaway database, submits N records to a LedgerWriter as fast as a gateway could, and
reports records per second until all are stored, for a few batch sizes.

    .venv/bin/python bench/ledger_insert_rate.py --records 100000
    .venv/bin/python bench/ledger_insert_rate.py --url sqlite+aiosqlite:////tmp/ledger-bench.db
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

from maas_gateway.database import Database
from maas_gateway.metering import LedgerWriter, Spool, UsageRecord
from maas_gateway.metering.sql_store import SqlLedgerStore

__all__ = ["main"]

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def _record(index: int) -> UsageRecord:
    return UsageRecord(
        uuid.uuid4().hex,
        time.time(),
        f"user-{index % 1000}",
        "premium",
        "key_bench",
        "simulator-model",
        "/v1/chat/completions",
        200,
        10,
        20,
        30,
        30,
        0.00004,
        index % 3 == 0,
        False,
        False,
        4.2,
    )


async def _measure(url: str, records: int, batch_size: int) -> float:
    database = Database(url)
    with tempfile.TemporaryDirectory() as spool:
        writer = LedgerWriter(
            SqlLedgerStore(database),
            Spool(Path(spool)),
            flush_interval=0.05,
            batch_size=batch_size,
            max_buffer=records * 2,
        )
        await writer.start()
        started = time.perf_counter()
        for index in range(records):
            writer.submit(_record(index))
            if index % batch_size == 0:
                await asyncio.sleep(0)  # let the writer run, as a serving gateway would
        while writer.written < records:  # noqa: ASYNC110  # polling a counter owned by the writer is the point
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        await writer.stop()
    await database.aclose()
    return records / elapsed


async def _postgres_database() -> str:
    name = f"maas_bench_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(SERVER)
    await connection.execute(f'CREATE DATABASE "{name}"')
    await connection.close()
    return name


async def _drop(name: str) -> None:
    connection = await asyncpg.connect(SERVER)
    await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--url", help="A database URL; default: a throwaway PostgreSQL database.")
    args = parser.parse_args()
    for batch_size in (100, 500, 2000):
        name = None
        url = args.url
        if url is None:
            name = asyncio.run(_postgres_database())
            url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        try:
            rate = asyncio.run(_measure(url, args.records, batch_size))
        finally:
            if name is not None:
                asyncio.run(_drop(name))
        print(f"batch {batch_size:5d}: {rate:9.0f} records/s sustained ({args.records} records)")


if __name__ == "__main__":
    main()
