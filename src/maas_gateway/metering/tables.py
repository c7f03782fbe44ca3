"""The ledger's SQLAlchemy tables; Alembic migrations (``migrations/``) create and evolve them.

``usage_records`` holds one row per request (raw, may be pruned one day); ``usage_hourly`` and
``usage_daily`` hold the rollups that reports and the portal read (kept for good). The writer keeps all
of them in one transaction (``sql_writes.py``). The daily rollups leave out the endpoint and the key, and
two coarser ones the model or the user, so that a month over all users reads few rows.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    false,
)

from maas_gateway.database import metadata

__all__ = [
    "DAILY_DIMENSIONS",
    "ROLLUP_DIMENSIONS",
    "ROLLUP_MEASURES",
    "backend_token_readings",
    "usage_daily",
    "usage_daily_teams",
    "usage_hourly",
    "usage_records",
]

usage_records = Table(
    "usage_records",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("created_at", Double, nullable=False),
    Column("hour", Integer, nullable=False),
    Column("user", String(200), nullable=False),
    Column("tier", String(100), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("model", String(200), nullable=True),
    Column("endpoint", String(100), nullable=False),
    Column("status", Integer, nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("total_tokens", Integer, nullable=False),
    Column("charged_tokens", Integer, nullable=False),
    Column("cost", Double, nullable=False),
    Column("streamed", Boolean, nullable=False),
    Column("rate_limited", Boolean, nullable=False),
    Column("usage_estimated", Boolean, nullable=False),
    Column("latency_ms", Double, nullable=False),
    Column("failed", Boolean, nullable=False, server_default=false()),
    # Issue 16 (migration 0010): a stream the backend broke off, and the backend that served.
    Column("broken", Boolean, nullable=False, server_default=false()),
    Column("backend", String(500), nullable=True),
    # Issue 16 (migration 0009): the price version a cost was computed at, and the key's team.
    Column("price_version", String(40), nullable=False, server_default=""),
    Column("team", String(100), nullable=False, server_default=""),
    Index("ix_usage_records_hour_user", "hour", "user"),
    # A user's last calls (the portal's overview): newest first straight from the index.
    Index("ix_usage_records_user_created", "user", "created_at"),
    Index("ix_usage_records_user_hour", "user", "hour"),
)

ROLLUP_MEASURES = (
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "charged_tokens",
    "cost",
    "streamed",  # how many of the requests streamed
    "latency_ms",  # a sum: divide by requests for the mean
)


def _rollup_table(name: str, dimensions: tuple[str, ...], *indexes: Index) -> Table:
    """A rollup table: its dimensions (the first is the time: ``hour`` or ``day`` since the epoch, UTC)
    form the primary key, in order, so a range of time over everyone is one index range."""
    lengths = {
        "user": 200,
        "tier": 100,
        "model": 200,
        "endpoint": 100,
        "key_id": 64,
        "outcome": 16,
        "team": 100,
    }
    keys = [
        Column(
            dimension,
            Integer if dimension in ("hour", "day") else String(lengths[dimension]),
            nullable=False,
            # Rows written before teams (migration 0009) belong to no team.
            server_default="" if dimension == "team" else None,
        )
        for dimension in dimensions
    ]
    measures = [
        Column(measure, Double if measure in ("cost", "latency_ms") else BigInteger, nullable=False)
        for measure in ROLLUP_MEASURES
    ]
    return Table(
        name, metadata, *keys, *measures, PrimaryKeyConstraint(*dimensions, name=f"pk_{name}"), *indexes
    )


# Finest first. A model-less request is stored with model '' (a NULL would never conflict, so the upsert
# would add a row per batch instead of adding to one). The team ('' for none) came last (migration 0009):
# appended to the primary key, so every existing range scan keeps its prefix.
usage_hourly = _rollup_table(
    "usage_hourly",
    ("hour", "user", "tier", "model", "endpoint", "key_id", "outcome", "team"),
    Index("ix_usage_hourly_user_hour", "user", "hour"),  # one user's series
)
usage_daily = _rollup_table(
    "usage_daily",
    ("day", "user", "tier", "model", "outcome", "team"),
    Index("ix_usage_daily_user_day", "user", "day"),
)
# Coarser still, for reports over everyone: a month by user (or by model) reads a few thousand rows.
usage_daily_users = _rollup_table("usage_daily_users", ("day", "user", "tier", "outcome"))
usage_daily_models = _rollup_table("usage_daily_models", ("day", "tier", "model", "outcome"))
# Chargeback over everyone: a month by team (and model) reads a few thousand rows.
usage_daily_teams = _rollup_table("usage_daily_teams", ("day", "team", "tier", "model", "outcome"))

ROLLUP_TABLES = (usage_hourly, usage_daily, usage_daily_teams, usage_daily_users, usage_daily_models)
ROLLUP_DIMENSIONS = tuple(column.name for column in usage_hourly.primary_key.columns)
DAILY_DIMENSIONS = tuple(column.name for column in usage_daily.primary_key.columns)


def dimensions_of(table: Table) -> tuple[str, ...]:
    """A rollup table's dimensions, in primary-key order."""
    return tuple(column.name for column in table.primary_key.columns)


DAILY_TABLES = (usage_daily_models, usage_daily_users, usage_daily_teams, usage_daily)  # smallest first


def daily_table_for(dimensions: set[str]) -> Table | None:
    """The smallest daily rollup table with every one of ``dimensions`` (``day`` aside), if any."""
    for table in DAILY_TABLES:
        if dimensions - {"day"} <= set(dimensions_of(table)):
            return table
    return None


# Readings of each backend's own cumulative token counters (vLLM's ``vllm:prompt_tokens_total`` and
# ``vllm:generation_tokens_total``), one row per backend, model and scrape: a period's backend-side
# count is the difference between two readings (metering/reconcile.py). Pruned like the raw records.
backend_token_readings = Table(
    "backend_token_readings",
    metadata,
    Column("backend", String(500), nullable=False),
    Column("model", String(200), nullable=False),
    Column("at", Double, nullable=False),
    Column("prompt_tokens", Double, nullable=False),
    Column("generation_tokens", Double, nullable=False),
    PrimaryKeyConstraint("backend", "model", "at", name="pk_backend_token_readings"),
    # A period's readings over every backend, and the oldest for pruning: a range of times.
    Index("ix_backend_token_readings_at", "at"),
)
