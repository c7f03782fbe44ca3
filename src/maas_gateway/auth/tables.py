"""Users, API keys and the log of identity changes in the shared database (see ``maas_gateway.database``)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    false,
)

from maas_gateway.database import metadata

__all__ = ["api_keys", "identity_changes", "users"]

users = Table(
    "users",
    metadata,
    Column("user", String(200), primary_key=True),
    Column("tier", String(100), nullable=False),
    Column("display_name", String(200), nullable=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", Double, nullable=False),
    Column("source", String(20), nullable=False, server_default="admin"),
    Column("tier_override", String(100), nullable=True),
    Column("deprovisioned", Boolean, nullable=False, server_default=false()),
    Column("seen_at", Double, nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", String(64), primary_key=True),  # "key_" + the visible prefix
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("user", String(200), ForeignKey("users.user", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("models", JSON, nullable=True),
    Column("ephemeral", Boolean, nullable=False, default=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=True),
    Column("revoked_at", Double, nullable=True),
    Column("last_used_at", Double, nullable=True),
    Column("search_text", Text, nullable=True),  # folded name and id: one search rule on every database
    Column("team", String(100), nullable=True),  # the owner's team it charges to (teams/); None: none
    Index("ix_api_keys_user", "user"),
    Index("ix_api_keys_expires_at", "expires_at"),
)

identity_changes = Table(
    "identity_changes",
    metadata,
    # SQLite assigns increasing numbers only to an INTEGER PRIMARY KEY; PostgreSQL wants a bigint.
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("kind", String(10), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("at", Double, nullable=False),
)
