"""The alert outbox: budget alerts, once per webhook, budget, window and threshold, until delivered.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_outbox",
        sa.Column("alert_id", sa.String(36), primary_key=True),
        sa.Column("webhook", sa.String(100), nullable=False),
        sa.Column("user", sa.String(200), nullable=False),
        sa.Column("tier", sa.String(100), nullable=False),
        sa.Column("limit_key", sa.String(300), nullable=False),
        sa.Column("limit_value", sa.BigInteger, nullable=False),
        sa.Column("unit", sa.String(40), nullable=False),
        sa.Column("window", sa.String(40), nullable=False),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("window_end", sa.BigInteger, nullable=False),
        sa.Column("threshold", sa.Integer, nullable=False),
        sa.Column("used", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Double, nullable=False),
        sa.Column("claim", sa.String(36), nullable=True),
        sa.Column("lease_until", sa.Double, nullable=False),
        sa.Column("delivered_at", sa.Double, nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.UniqueConstraint(
            "webhook", "user", "limit_key", "window_start", "threshold", name="uq_alert_outbox_once"
        ),
    )
    op.create_index("ix_alert_outbox_due", "alert_outbox", ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_alert_outbox_due", table_name="alert_outbox")
    op.drop_table("alert_outbox")
