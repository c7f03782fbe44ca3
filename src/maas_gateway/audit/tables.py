"""The audit log's table in the shared database (see ``maas_gateway.database``)."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Double, Index, Integer, String, Table

from maas_gateway.database import metadata

__all__ = ["audit_entries"]

audit_entries = Table(
    "audit_entries",
    metadata,
    # SQLite assigns increasing numbers only to an INTEGER PRIMARY KEY; PostgreSQL wants a bigint.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", Double, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("actor_kind", String(20), nullable=False),
    Column("address", String(100), nullable=False),
    Column("action", String(100), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("details", JSON, nullable=False),
    Index("ix_audit_entries_at", "at"),
    Index("ix_audit_entries_actor", "actor"),
    Index("ix_audit_entries_subject", "subject"),
)
