"""The portal's accounts and sessions in the shared database (see ``maas_gateway.database``).

Both belong to a row of the users table and go with it (``ON DELETE CASCADE``).
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Double, ForeignKey, Index, String, Table, false

from maas_gateway.database import metadata

__all__ = ["portal_accounts", "portal_sessions"]

portal_accounts = Table(
    "portal_accounts",
    metadata,
    Column("user", String(200), ForeignKey("users.user", ondelete="CASCADE"), primary_key=True),
    Column("password_hash", String(200), nullable=False),  # argon2id, with its parameters and salt
    Column("is_admin", Boolean, nullable=False, server_default=false()),
    Column("created_at", Double, nullable=False),
    Column("password_changed_at", Double, nullable=False),
)

portal_sessions = Table(
    "portal_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 of the cookie's token, never the token
    Column("user", String(200), ForeignKey("users.user", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("last_seen_at", Double, nullable=False),
    Index("ix_portal_sessions_user", "user"),
)
