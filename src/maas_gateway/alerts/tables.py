"""The alert outbox's SQLAlchemy tables; migrations 0008 and 0011 create them."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Double, Index, Integer, String, Table, UniqueConstraint

from maas_gateway.database import metadata

__all__ = ["alert_outbox", "alert_outbox_purges"]

alert_outbox = Table(
    "alert_outbox",
    metadata,
    Column("alert_id", String(36), primary_key=True),
    Column("webhook", String(100), nullable=False),
    Column("user", String(200), nullable=False),
    Column("tier", String(100), nullable=False),
    Column("limit_key", String(300), nullable=False),
    Column("limit_value", BigInteger, nullable=False),
    Column("unit", String(40), nullable=False),
    Column("window", String(40), nullable=False),
    Column("window_start", BigInteger, nullable=False),
    Column("window_end", BigInteger, nullable=False),
    Column("threshold", Integer, nullable=False),
    Column("used", BigInteger, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("state", String(16), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Double, nullable=False),
    Column("claim", String(36), nullable=True),
    Column("lease_until", Double, nullable=False),
    Column("delivered_at", Double, nullable=True),
    Column("last_error", String(500), nullable=True),
    # The exactly-once rule: one alert per webhook, budget, window and threshold, whichever replica wins.
    UniqueConstraint(
        "webhook", "user", "limit_key", "window_start", "threshold", name="uq_alert_outbox_once"
    ),
    Index("ix_alert_outbox_due", "state", "next_attempt_at"),
)

# One row (id 1): settled alerts of windows that ended by ``purged_through`` may have been deleted, so an
# alert of such a window is refused; the identity of a deleted alert can then never be stored again.
alert_outbox_purges = Table(
    "alert_outbox_purges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("purged_through", Double, nullable=False),
)
