"""The ledger's SQLAlchemy table; Alembic migrations (``migrations/``) create and evolve it."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Double, Index, Integer, String, Table, false

from maas_gateway.database import metadata

__all__ = ["usage_records"]

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
    Index("ix_usage_records_user_hour", "user", "hour"),
)
