"""The monthly chargeback report by team against ten million usage records in PostgreSQL (issue 16: "with
10 million records in PostgreSQL a monthly report by team takes under 2 s").

Creates a throwaway database on 127.0.0.1:5432, migrates it to the newest revision, loads ``--records``
records with one ``generate_series`` insert (``--days`` days ending with the month's last, so the month
is whole and older records lie before it; ``--users`` users in ``--teams`` teams and none, ``--models``
models, every outcome), builds every rollup table from them with the writer's own statements
(``rollup_select`` into ``rollup_upsert``), and runs ``VACUUM ANALYZE``. Then it asks the whole gateway
(``Application``, its admin API reached in process through httpx's ASGI transport with the admin key) for
``GET /admin/usage?month=...`` by team and by team and model, as JSON, CSV and FOCUS CSV: what ``maas
usage --month 2026-11 --group-by team,model [--csv | --focus]`` asks a running gateway. Each ``--runs``
times after a warm-up; median and p95. It checks that the month's report adds up to the month's records.

``--sqlite-records`` runs the same report on SQLite first, a smaller ledger stored through the writer
(``SqlLedgerStore.write``, batches of 5,000) in a temporary file: a sanity check of the other engine.

    .venv/bin/python bench/usage_chargeback.py                          # 10,000,000 records, 20 runs
    .venv/bin/python bench/usage_chargeback.py --records 1000000 --runs 5 --sqlite-records 200000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from ledger_load import (
    build_rollups,
    insert_records,
    median_p95,
    migrate,
    rollup_rows,
    throwaway_database,
    vacuum_analyze,
)
from maas_gateway.admin.usage import month_bounds
from maas_gateway.application.root import Application
from maas_gateway.database import Database
from maas_gateway.metering.records import UsageRecord
from maas_gateway.metering.sql_store import SqlLedgerStore
from maas_gateway.metering.tables import usage_records
from portal_pages import bench_config

__all__ = ["main"]

DAY = 86400
BUDGET_MS = 2000.0
ADMIN_KEY = "bench-admin-key-0123456789abcdef0123456789"

# Each report: its query string after ``month=...``.
REPORTS = {
    "by team, JSON": "group_by=team",
    "by team and model, JSON (maas usage --group-by team,model)": "group_by=team,model",
    "by team and model, CSV (--csv)": "group_by=team,model&format=csv",
    "by team and model, FOCUS CSV (--focus)": "group_by=team,model&format=focus",
}


async def _load_postgresql(url: str, args: argparse.Namespace, start: float) -> dict[str, float]:
    database = Database(url, migrate=False)
    timings: dict[str, float] = {}
    await migrate(database, "head")
    started = time.perf_counter()
    async with database.engine.begin() as connection:
        await insert_records(
            connection,
            records=args.records,
            start=start,
            span=args.days * DAY,
            users=args.users,
            models=args.models,
            teams=args.teams,
        )
    timings["load"] = time.perf_counter() - started
    rollups = await build_rollups(database)
    timings["rollups"] = sum(rollups.values())
    started = time.perf_counter()
    await vacuum_analyze(database)
    timings["vacuum"] = time.perf_counter() - started
    timings.update((name, float(count)) for name, count in (await rollup_rows(database)).items())
    await database.aclose()
    return timings


def _record(index: int, count: int, args: argparse.Namespace, start: float) -> UsageRecord:
    """The generate_series load's record ``index`` (without its hashes: users and models in turn)."""
    user, slot = index % args.users, index % args.users % (args.teams + 1)
    prompt, completion = 50 + index % 400, 10 + index % 300
    return UsageRecord(
        request_id=f"req-{index}",
        created_at=start + index * (args.days * DAY / count),
        user=f"user-{user}",
        tier=("free", "premium", "enterprise")[user % 3],
        key_id=f"key-{user}-{index % 2}",
        model=None if index % 997 == 0 else f"model-{index % args.models}",
        endpoint="/v1/embeddings" if index % 9 == 0 else "/v1/chat/completions",
        status=429 if index % 50 == 0 else 502 if index % 97 == 0 else 400 if index % 211 == 0 else 200,
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        charged_tokens=prompt + completion,
        cost=(prompt * 0.0005 + completion * 0.0015) / 1000,
        streamed=index % 3 == 0,
        rate_limited=index % 50 == 0,
        usage_estimated=False,
        latency_ms=100.0 + index % 900,
        failed=index % 50 != 0 and index % 97 == 0,
        team="" if slot == 0 else f"team-{slot}",
    )


async def _load_sqlite(url: str, args: argparse.Namespace, start: float) -> dict[str, float]:
    database = Database(url)
    store = SqlLedgerStore(database)
    await store.start()
    started = time.perf_counter()
    count = args.sqlite_records
    for first in range(0, count, 5000):
        batch = range(first, min(first + 5000, count))
        await store.write([_record(index, count, args, start) for index in batch])
    await database.aclose()
    return {"load": time.perf_counter() - started}


async def _month_records(url: str, month: str) -> int:
    since, until = month_bounds(month)
    database = Database(url, migrate=False)
    created = usage_records.c.created_at
    statement = select(func.count()).where(created >= since, created < until)
    async with database.engine.connect() as connection:
        count = (await connection.execute(statement)).scalar_one()
    await database.aclose()
    return int(count)


async def _measure(url: str, month: str, runs: int) -> tuple[list[tuple[str, float, float]], int]:
    """Median and p95 ms of each report through the gateway, and the requests its JSON by team counts."""
    application = Application(bench_config(url, admin_key=ADMIN_KEY))
    await application.start()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application.asgi),
        base_url="http://gw",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=120,
    )
    try:
        results = []
        for name, query in REPORTS.items():
            print(f"measuring: {name}", file=sys.stderr, flush=True)
            address = f"/admin/usage?month={month}&{query}"
            times = []
            for run in range(runs + 1):  # the first warms up
                started = time.perf_counter()
                answer = await client.get(address)
                elapsed = (time.perf_counter() - started) * 1000
                assert answer.status_code == 200, f"{address}: {answer.status_code} {answer.text[:300]}"
                if run:
                    times.append(elapsed)
            results.append((name, *median_p95(times)))
        by_team = (await client.get(f"/admin/usage?month={month}&group_by=team")).json()["data"]
        return results, sum(row["requests"] for row in by_team)
    finally:
        await client.aclose()
        await application.stop()


def _report(engine: str, url: str, args: argparse.Namespace) -> None:
    results, counted = asyncio.run(_measure(url, args.month, args.runs))
    stored = asyncio.run(_month_records(url, args.month))
    assert counted == stored, f"{engine}: the report counts {counted:,} requests, the month has {stored:,}"
    print(f"\n{engine}: the month's {stored:,} records all counted once by the report by team.")
    print(f"\n| {engine}: report of {args.month} | median ms | p95 ms | under {BUDGET_MS:,.0f} ms |")
    print("|---|---:|---:|---|")
    for name, median, p95 in results:
        print(f"| {name} | {median:.1f} | {p95:.1f} | {'yes' if p95 < BUDGET_MS else 'NO'} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--month", default="2026-11", help="the month reported (UTC)")
    parser.add_argument("--days", type=int, default=45, help="days of records, ending with the month's")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--teams", type=int, default=20, help="teams (users in none besides)")
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--sqlite-records", type=int, default=0, help="also SQLite with this many records")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database and print its URL")
    args = parser.parse_args()
    start = month_bounds(args.month)[1] - args.days * DAY
    if args.sqlite_records:
        with tempfile.TemporaryDirectory() as directory:
            url = f"sqlite+aiosqlite:///{Path(directory) / 'ledger.db'}"
            timings = asyncio.run(_load_sqlite(url, args, start))
            stored = f"{args.sqlite_records:,} records stored through the writer"
            print(f"SQLite: {stored} in {timings['load']:.1f} s")
            _report("SQLite", url, args)
    if not args.records:
        return
    with throwaway_database("maas_bench_chargeback", keep=args.keep) as url:
        timings = asyncio.run(_load_postgresql(url, args, start))
        print(
            f"\nPostgreSQL: {args.records:,} records over {args.days} days, {args.users:,} users in "
            f"{args.teams} teams, {args.models} models: loaded in {timings['load']:.0f} s, rollups built in "
            f"{timings['rollups']:.0f} s, VACUUM ANALYZE {timings['vacuum']:.0f} s; rows: "
            + ", ".join(f"{name} {timings[name]:,.0f}" for name in timings if name.startswith("usage_")),
            flush=True,
        )
        _report("PostgreSQL", url, args)


if __name__ == "__main__":
    main()
