"""The portal's usage queries against a ledger of a million records in PostgreSQL (issue 15's "fast with a
real ledger": every page under 200 ms of server time).

Creates a throwaway database on 127.0.0.1:5432, migrates it to revision 0004 (the ledger before
rollups), loads ``--records`` usage records with one ``generate_series`` insert (``--days`` days up to now,
``--users`` users, ``--models`` models, every outcome), then migrates to the newest revision, whose
backfill builds ``usage_hourly`` exactly as it does on a real upgrade. Then it times, in process, each
page's queries through ``SqlUsageReports`` and ``SqlLedgerStore.aggregate`` (the code the portal and the
admin API run), ``--runs`` times each, a different user each run, and prints median and p95. Last, it
times each usage page's whole server-side render through the portal's ASGI app in process
(``portal_pages.py``: routing, session, queries, template), ``--runs`` times each.

    .venv/bin/python bench/portal_usage.py                      # 1,000,000 records, 20 runs
    .venv/bin/python bench/portal_usage.py --records 100000 --runs 5
    .venv/bin/python bench/portal_usage.py --pages-only          # only the pages' server-side render
    .venv/bin/python bench/portal_usage.py --only "after key"    # only those queries (deep pages by key)
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ledger_load import insert_records, median_p95, migrate, rollup_rows, throwaway_database, vacuum_analyze
from maas_gateway.database import Database
from maas_gateway.metering import ReportRange, UsageQuery, usage_csv
from maas_gateway.metering.reports import Dimension
from maas_gateway.metering.sql_reports import SqlUsageReports
from maas_gateway.metering.sql_store import SqlLedgerStore
from maas_gateway.metering.tables import ROLLUP_TABLES
from portal_pages import measure_pages

__all__ = ["main"]

DAY = 86400
BUDGET_MS = 200.0


async def _load(url: str, records: int, days: int, users: int, models: int, now: float) -> dict[str, float]:
    """Load the raw records at revision 0004, then upgrade (the backfill); the seconds each took."""
    database = Database(url, migrate=False)
    timings: dict[str, float] = {}
    await migrate(database, "0004")
    started = time.perf_counter()
    async with database.engine.begin() as connection:
        await insert_records(
            connection, records=records, start=now - days * DAY, span=days * DAY, users=users, models=models
        )
    timings["load"] = time.perf_counter() - started
    started = time.perf_counter()
    await migrate(database, "head")
    timings["backfill"] = time.perf_counter() - started
    await vacuum_analyze(database)
    timings.update((name, float(count)) for name, count in (await rollup_rows(database)).items())
    await database.aclose()
    return timings


def _pages(reports: SqlUsageReports, store: SqlLedgerStore, now: float, users: int) -> dict[str, Any]:
    """Each page: a coroutine factory taking the run's index (which picks the user)."""
    day, week, month = (ReportRange.last(n * DAY, now) for n in (1, 7, 30))

    def user(run: int) -> str:
        return f"user-{(run * 37) % users}"

    async def overview(run: int) -> None:
        await reports.totals(day, user=user(run))
        await reports.breakdown(day, ("model",), user=user(run))
        await reports.recent_calls(user(run), 10)

    def usage(period: ReportRange, bucket: str) -> Callable[[int], Awaitable[None]]:
        async def page(run: int) -> None:
            await reports.totals(period, user=user(run))
            await reports.breakdown(period, (bucket, "model"), user=user(run))  # type: ignore[arg-type]  # a literal

        return page

    async def user_csv(run: int) -> None:
        usage_csv(await reports.breakdown(month, ("day", "model"), user=user(run)), ("day", "model"))

    async def admin_overview(run: int) -> None:
        await reports.totals(day)
        await reports.top(day, "user", limit=10)
        await reports.top(day, "model", limit=10)
        await reports.breakdown(day, ("hour",))

    async def admin_usage(run: int) -> None:
        await reports.totals(month)
        await reports.breakdown(month, ("user", "model", "day"), limit=100, offset=100 * (run % 5))

    def admin_usage_deep(offset: int) -> Callable[[int], Awaitable[None]]:
        async def page(run: int) -> None:
            await reports.totals(month)
            groups: tuple[Dimension, ...] = ("user", "model", "day")
            await reports.breakdown(month, groups, limit=100, offset=offset + 100 * (run % 5))

        return page

    def admin_usage_keyset(offset: int) -> Callable[[int], Awaitable[None]]:
        """The same page read from the key of the group before it (the portal's "Next page" link)."""
        groups: tuple[Dimension, ...] = ("user", "model", "day")
        keys: list[list[str | int | None]] = []

        async def page(run: int) -> None:
            if not keys:  # in the warm-up: the key of the group before the page, found by offset
                [before] = await reports.breakdown(month, groups, limit=1, offset=offset - 1)
                keys.append(list(before.key.values()))
            await reports.totals(month)
            await reports.breakdown(month, groups, limit=100, after=keys[0])

        return page

    def admin_grouped(group: str) -> Callable[[int], Awaitable[None]]:
        async def page(run: int) -> None:
            await reports.breakdown(month, (group,), limit=100)  # type: ignore[arg-type]  # a literal

        return page

    async def admin_csv(run: int) -> None:
        groups: tuple[Dimension, ...] = ("user", "model", "day")
        usage_csv(await reports.breakdown(month, groups), groups)

    async def admin_api(run: int) -> None:
        # /admin/usage's default: the last 30 days up to now (not hour-aligned), by user and model.
        await store.aggregate(UsageQuery(now - 30 * DAY, now + 1, ("user", "model")))

    return {
        "developer overview (24 h totals, by model, last 10 calls)": overview,
        "developer usage 24 h (by hour and model)": usage(day, "hour"),
        "developer usage 7 d (by day and model)": usage(week, "day"),
        "developer usage 30 d (by day and model)": usage(month, "day"),
        "developer CSV 30 d": user_csv,
        "admin overview (24 h totals, top users, top models, by hour)": admin_overview,
        "admin usage 30 d by user, model, day (a page of 100)": admin_usage,
        **{
            f"admin usage 30 d by user, model, day (100 at offset {offset:,})": admin_usage_deep(offset)
            for offset in (1_000, 50_000, 250_000)
        },
        **{
            f"admin usage 30 d by user, model, day (100 after key {offset:,})": admin_usage_keyset(offset)
            for offset in (1_000, 50_000, 250_000)
        },
        "admin usage 30 d by tier": admin_grouped("tier"),
        "admin usage 30 d by model": admin_grouped("model"),
        "admin usage 30 d by day": admin_grouped("day"),
        "admin usage 30 d by user (a page of 100)": admin_grouped("user"),
        "admin CSV 30 d by user, model, day (every row)": admin_csv,
        "GET /admin/usage default (30 d to now, by user and model)": admin_api,
    }


async def _measure(url: str, now: float, users: int, runs: int, only: str) -> list[tuple[str, float, float]]:
    database = Database(url, migrate=False)
    reports, store = SqlUsageReports(database), SqlLedgerStore(database)
    results = []
    for name, page in _pages(reports, store, now, users).items():
        if only not in name:
            continue
        print(f"measuring: {name}", file=sys.stderr, flush=True)
        await page(runs)  # a warm-up, with a user the runs do not use
        times = []
        for run in range(runs):
            started = time.perf_counter()
            await page(run)
            times.append((time.perf_counter() - started) * 1000)
        results.append((name, *median_p95(times)))
    await database.aclose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep the database and print its URL")
    parser.add_argument("--pages-only", action="store_true", help="time the rendered pages, not the queries")
    parser.add_argument("--only", default="", help="only the queries whose name has this text, no pages")
    args = parser.parse_args()
    with throwaway_database("maas_bench_portal", keep=args.keep) as url:
        now = time.time()
        timings = asyncio.run(_load(url, args.records, args.days, args.users, args.models, now))
        print(
            f"{args.records:,} records over {args.days} days, {args.users:,} users, {args.models} models: "
            f"loaded in {timings['load']:.1f} s, rollups backfilled in {timings['backfill']:.1f} s; rows: "
            + ", ".join(f"{table.name} {timings[table.name]:,.0f}" for table in ROLLUP_TABLES),
            flush=True,
        )
        print(f"\n| page | median ms | p95 ms | under {BUDGET_MS:.0f} ms |\n|---|---:|---:|---|")
        rows = [] if args.pages_only else asyncio.run(_measure(url, now, args.users, args.runs, args.only))
        start, end = (time.strftime("%Y-%m-%d", time.gmtime(now - days * DAY)) for days in (29, 0))
        if not args.only:
            rows += asyncio.run(
                measure_pages(url, lambda run: f"user-{(run * 37) % args.users}", args.runs, start, end)
            )
        for page, median, p95 in rows:
            print(f"| {page} | {median:.1f} | {p95:.1f} | {'yes' if p95 < BUDGET_MS else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
