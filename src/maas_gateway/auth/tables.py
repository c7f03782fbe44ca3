"""Users and API keys in the shared database (see ``maas_gateway.database``)."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Double, ForeignKey, Index, String, Table

from maas_gateway.database import metadata

__all__ = ["api_keys", "users"]

users = Table(
    "users",
    metadata,
    Column("user", String(200), primary_key=True),
    Column("tier", String(100), nullable=False),
    Column("display_name", String(200), nullable=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", Double, nullable=False),
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
    Index("ix_api_keys_user", "user"),
    Index("ix_api_keys_expires_at", "expires_at"),
)
