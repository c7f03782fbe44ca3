"""Plan change requests in the shared database (see ``maas_gateway.database``)."""

from __future__ import annotations

from sqlalchemy import Column, Double, Index, String, Table, Text, text

from maas_gateway.database import metadata

__all__ = ["PENDING_ONLY", "plan_requests"]

# The partial index that allows one pending request per user, on SQLite and PostgreSQL alike.
PENDING_ONLY = text("status = 'pending'")

plan_requests = Table(
    "plan_requests",
    metadata,
    Column("request_id", String(40), primary_key=True),
    Column("user", String(200), nullable=False),
    Column("from_tier", String(100), nullable=False),
    Column("tier", String(100), nullable=False),
    Column("note", Text, nullable=True),
    Column("status", String(20), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("decided_at", Double, nullable=True),
    Column("decided_by", String(200), nullable=True),
    Column("reason", Text, nullable=True),
    Index("ix_plan_requests_user", "user"),
    Index("ix_plan_requests_status_created", "status", "created_at"),
    Index(
        "ux_plan_requests_one_pending",
        "user",
        unique=True,
        sqlite_where=PENDING_ONLY,
        postgresql_where=PENDING_ONLY,
    ),
)
