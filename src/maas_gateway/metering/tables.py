"""The ledger's SQLAlchemy tables; Alembic migrations (``migrations/``) create and evolve them.

``usage_records`` holds one row per request (raw, may be pruned one day); ``usage_hourly`` and
``usage_daily`` hold the rollups that reports and the portal read (kept for good). The writer keeps all
three in one transaction (``sql_writes.py``). The daily rollups leave out the endpoint and the key, so
that a month over all users reads about a thirtieth as many rows as from the hourly ones.
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
    "usage_daily",
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
    Index("ix_usage_records_hour_user", "hour", "user"),
    # A user's last calls (the portal's overview): newest first straight from the index.
    Index("ix_usage_records_user_created", "user", "created_at"),
    Index("ix_usage_records_user_hour", "user", "hour"),
)

# The dimensions, in primary-key order: hour first, so a range of hours over all users is one index
# range. Issue 16 adds ``team`` here (a column with default '' and a rebuilt primary key).
ROLLUP_DIMENSIONS = ("hour", "user", "tier", "model", "endpoint", "key_id", "outcome")
ROLLUP_MEASURES = (
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "charged_tokens",
    "cost",
    "streamed",
    "latency_ms",
)

usage_hourly = Table(
    "usage_hourly",
    metadata,
    Column("hour", Integer, nullable=False),  # hours since the epoch, as usage_records.hour
    Column("user", String(200), nullable=False),
    Column("tier", String(100), nullable=False),
    # '' for a request without a model: a NULL would never conflict, so the upsert would add a row
    # per batch instead of adding to one.
    Column("model", String(200), nullable=False),
    Column("endpoint", String(100), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),  # outcomes.OUTCOMES
    Column("requests", BigInteger, nullable=False),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    Column("total_tokens", BigInteger, nullable=False),
    Column("charged_tokens", BigInteger, nullable=False),
    Column("cost", Double, nullable=False),
    Column("streamed", BigInteger, nullable=False),  # how many of the requests streamed
    Column("latency_ms", Double, nullable=False),  # a sum: divide by requests for the mean
    PrimaryKeyConstraint(*ROLLUP_DIMENSIONS, name="pk_usage_hourly"),
    # One user's series over a range (the developer pages).
    Index("ix_usage_hourly_user_hour", "user", "hour"),
)

DAILY_DIMENSIONS = ("day", "user", "tier", "model", "outcome")

usage_daily = Table(
    "usage_daily",
    metadata,
    Column("day", Integer, nullable=False),  # days since the epoch (UTC): usage_records.hour // 24
    Column("user", String(200), nullable=False),
    Column("tier", String(100), nullable=False),
    Column("model", String(200), nullable=False),  # '' for none, as in usage_hourly
    Column("outcome", String(16), nullable=False),
    Column("requests", BigInteger, nullable=False),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    Column("total_tokens", BigInteger, nullable=False),
    Column("charged_tokens", BigInteger, nullable=False),
    Column("cost", Double, nullable=False),
    Column("streamed", BigInteger, nullable=False),
    Column("latency_ms", Double, nullable=False),
    PrimaryKeyConstraint(*DAILY_DIMENSIONS, name="pk_usage_daily"),
    Index("ix_usage_daily_user_day", "user", "day"),
)
