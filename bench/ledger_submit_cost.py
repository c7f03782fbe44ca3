"""The hot-path cost of metering one request (``LedgerWriter.submit``), and what a group commit costs.

``submit`` runs once per answered request, on the event loop. This times it in CPU time (best of several
runs, so other work on a shared machine does not count), with the database up and during an outage,
when the records it buffers go to the spool by group commit. The group commit itself runs in the
background; its CPU time per record (JSON encoding on the loop's worker thread) and its wall time per
commit (one write and one fsync of the spool file) are reported too, as they compete for the same CPU.

    .venv/bin/python bench/ledger_submit_cost.py --calls 200000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from maas_gateway.metering import InMemoryLedgerStore, LedgerWriter, Spool, UsageRecord

__all__ = ["main"]


def _records(count: int) -> list[UsageRecord]:
    return [
        UsageRecord(
            f"req-{index:012d}", 1_800_000_000.0 + index, f"user-{index % 100}", "premium", "key_0123abcd",
            "simulator-model", "/v1/chat/completions", 200, 12, 30, 42, 42, 0.000105, True, False, False, 4.2,
        )
        for index in range(count)
    ]  # fmt: skip


def _submit_cost(writer: LedgerWriter, records: list[UsageRecord], repeats: int) -> float:
    """Microseconds per ``submit``; the buffer is emptied between runs, outside the timing."""
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for record in records:
            writer.submit(record)
        best = min(best, (time.process_time() - started) / len(records) * 1e6)
        writer._buffer.clear()  # the benchmark empties the buffer between timed runs
    return best


async def _commit_cost(writer: LedgerWriter, records: list[UsageRecord], batch: int) -> tuple[float, float]:
    """CPU microseconds per record and median wall milliseconds per commit of ``batch`` records."""
    walls = []
    cpu_started = time.process_time()
    for start in range(0, len(records), batch):
        for record in records[start : start + batch]:
            writer.submit(record)
        began = time.perf_counter()
        await writer.commit()
        walls.append((time.perf_counter() - began) * 1000)
    cpu = (time.process_time() - cpu_started) / len(records) * 1e6
    return cpu, statistics.median(walls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--commit-batch", type=int, default=25, help="Records per commit: 20 ms at 1,250/s.")
    args = parser.parse_args()
    records = _records(args.calls)
    with tempfile.TemporaryDirectory(prefix="maas-submit-bench-") as directory:

        async def run() -> None:
            writer = LedgerWriter(InMemoryLedgerStore(), Spool(Path(directory) / "spool"), batch_size=10**9)
            up = _submit_cost(writer, records, args.repeats)
            print(f"submit() per request, best of {args.repeats} x {args.calls:,} calls:")
            print(f"  database up:   {up:.3f} µs")
            if not hasattr(writer, "commit"):
                return  # an older writer, without outage mode
            writer.outage.failed()
            down = _submit_cost(writer, records, args.repeats)
            print(f"  during outage: {down:.3f} µs")
            cpu, wall = await _commit_cost(writer, records[:20_000], args.commit_batch)
            print(f"group commit of {args.commit_batch} records (off the request path):")
            print(f"  CPU {cpu:.2f} µs per record, {wall:.2f} ms wall per commit (write + fsync)")

        asyncio.run(run())


if __name__ == "__main__":
    main()
