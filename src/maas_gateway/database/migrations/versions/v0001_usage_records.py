"""Create the usage ledger.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_records",
        sa.Column("request_id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("hour", sa.Integer, nullable=False),
        sa.Column("user", sa.String(200), nullable=False),
        sa.Column("tier", sa.String(100), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("endpoint", sa.String(100), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("total_tokens", sa.Integer, nullable=False),
        sa.Column("charged_tokens", sa.Integer, nullable=False),
        sa.Column("cost", sa.Double, nullable=False),
        sa.Column("streamed", sa.Boolean, nullable=False),
        sa.Column("rate_limited", sa.Boolean, nullable=False),
        sa.Column("usage_estimated", sa.Boolean, nullable=False),
        sa.Column("latency_ms", sa.Double, nullable=False),
    )
    op.create_index("ix_usage_records_hour_user", "usage_records", ["hour", "user"])
    op.create_index("ix_usage_records_user_hour", "usage_records", ["user", "hour"])


def downgrade() -> None:
    op.drop_table("usage_records")
