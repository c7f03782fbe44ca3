"""What the ledger benchmarks share: a throwaway PostgreSQL database, a synthetic ledger loaded with one
``generate_series`` insert, the rollups built from it as the writer builds them, and median and p95.

Used by ``portal_usage.py`` (a million records, loaded before the rollups existed and migrated, so the
migrations' backfill builds them) and ``usage_chargeback.py`` (ten million records with teams, loaded at
the newest revision, rollups built by ``rollup_select``/``rollup_upsert``, the writer's own statements).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
from alembic import command
from sqlalchemy import Connection, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from maas_gateway.database import Database
from maas_gateway.database.migrations import alembic_config
from maas_gateway.metering.rollups import rollup_select, rollup_upsert
from maas_gateway.metering.tables import ROLLUP_TABLES, usage_records

__all__ = [
    "SERVER",
    "build_rollups",
    "insert_records",
    "median_p95",
    "migrate",
    "rollup_rows",
    "throwaway_database",
    "vacuum_analyze",
]

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"

# One row per g: deterministic, spread evenly over the period, every outcome present. User and model are
# hashes of g, independent of each other and of the time, so each user's records are scattered over the
# whole period and its models (no user-sorted table that would flatter the per-user queries). Uniform
# over users is the rollups' worst case: real traffic is skewed, and a heavy user's hour is one row.
# With teams, a user belongs to one team (its key's), or to none: user u is in team u mod (teams + 1),
# team 0 meaning none ('').
_LOAD = """
INSERT INTO usage_records (request_id, created_at, hour, "user", tier, key_id, model, endpoint, status,
    prompt_tokens, completion_tokens, total_tokens, charged_tokens, cost, streamed, rate_limited,
    usage_estimated, latency_ms, failed{team_column})
SELECT 'req-' || g, at, floor(at / 3600)::int, 'user-' || u,
    (ARRAY['free', 'premium', 'enterprise'])[u % 3 + 1],
    'key-' || u || '-' || (g % 2), CASE WHEN g % 997 = 0 THEN NULL ELSE 'model-' || m END,
    CASE WHEN g % 9 = 0 THEN '/v1/embeddings' ELSE '/v1/chat/completions' END,
    CASE WHEN g % 50 = 0 THEN 429 WHEN g % 97 = 0 THEN 502 WHEN g % 211 = 0 THEN 400 ELSE 200 END,
    p, c, p + c, p + c, (p * 0.0005 + c * 0.0015) / 1000, g % 3 = 0, g % 50 = 0, false,
    100 + g % 900, g % 50 <> 0 AND g % 97 = 0{team_value}
FROM (
    SELECT g, :start + ((g * 7919) % :records)::float8 * :span / :records AS at,
           abs(hashtext('u' || g)) % :users AS u, abs(hashtext('m' || g)) % :models AS m,
           50 + g % 400 AS p, 10 + g % 300 AS c
    FROM generate_series(1::bigint, :records) AS g
) AS series
"""
_TEAM_VALUE = ", CASE WHEN u % (:teams + 1) = 0 THEN '' ELSE 'team-' || (u % (:teams + 1)) END"


@contextmanager
def throwaway_database(prefix: str, *, keep: bool = False) -> Iterator[str]:
    """A new, empty database on the local server (its SQLAlchemy URL), dropped afterwards unless kept."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    asyncio.run(_server(f'CREATE DATABASE "{name}"'))
    try:
        yield url
    finally:
        if keep:
            print(f"\nkept: {url}")
        else:
            asyncio.run(_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _server(statement: str) -> None:
    connection = await asyncpg.connect(SERVER)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def migrate(database: Database, revision: str) -> None:
    """Upgrade the database to ``revision`` (``head`` for the newest) as ``maas`` would."""

    def upgrade(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with database.engine.begin() as connection:
        await connection.run_sync(upgrade)


async def insert_records(
    connection: AsyncConnection,
    *,
    records: int,
    start: float,
    span: float,
    users: int,
    models: int,
    teams: int | None = None,
) -> None:
    """``records`` raw records over ``[start, start + span)``; with ``teams``, each user's team set
    (the ``team`` column exists from revision 0009), else the column is left out."""
    statement = _LOAD.format(
        team_column="" if teams is None else ", team", team_value="" if teams is None else _TEAM_VALUE
    )
    parameters = {"start": start, "span": span, "records": records, "users": users, "models": models}
    if teams is not None:
        parameters["teams"] = teams
    await connection.execute(text(statement), parameters)


async def build_rollups(database: Database) -> dict[str, float]:
    """Every rollup table built from all raw records with the writer's own statements (``rollup_select``
    into ``rollup_upsert``, as ``sql_writes.py`` adds each batch), one table after another; the seconds
    each took."""
    seconds = {}
    for table in ROLLUP_TABLES:
        started = time.perf_counter()
        async with database.engine.begin() as connection:
            await connection.execute(text("SET LOCAL work_mem = '256MB'"))  # sorts in memory, not on disk
            await connection.execute(rollup_upsert("postgresql", rollup_select(usage_records, table), table))
        seconds[table.name] = time.perf_counter() - started
    return seconds


async def vacuum_analyze(database: Database) -> None:
    """As autovacuum would soon after a bulk load: statistics for the planner, a visibility map."""
    async with database.engine.connect() as connection:
        await connection.execute(text("COMMIT"))
        await connection.execute(text("VACUUM ANALYZE"))


async def rollup_rows(database: Database) -> dict[str, int]:
    """How many rows each rollup table has."""
    async with database.engine.connect() as connection:
        return {
            table.name: (await connection.execute(select(func.count()).select_from(table))).scalar_one()
            for table in ROLLUP_TABLES
        }


def median_p95(times: list[float]) -> tuple[float, float]:
    """The median and the 95th percentile (nearest rank) of some timings."""
    ordered = sorted(times)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
