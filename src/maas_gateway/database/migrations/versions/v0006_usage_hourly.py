"""Hourly usage rollups (``usage_hourly``), backfilled from the usage records already stored.

Revision ID: 0006
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from maas_gateway.metering.rollups import rollup_select
from maas_gateway.metering.tables import ROLLUP_DIMENSIONS, ROLLUP_MEASURES, usage_hourly, usage_records

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_hourly",
        sa.Column("hour", sa.Integer, nullable=False),
        sa.Column("user", sa.String(200), nullable=False),
        sa.Column("tier", sa.String(100), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("endpoint", sa.String(100), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False),
        sa.Column("total_tokens", sa.BigInteger, nullable=False),
        sa.Column("charged_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost", sa.Double, nullable=False),
        sa.Column("streamed", sa.BigInteger, nullable=False),
        sa.Column("latency_ms", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint(*ROLLUP_DIMENSIONS, name="pk_usage_hourly"),
    )
    # The backfill runs in the migration's transaction: the gateway writes nothing until the migration
    # has finished (replicas wait on the migration's advisory lock), so no record is rolled up twice.
    # It is the same aggregation the writer runs on each batch (metering/rollups.py).
    op.execute(
        usage_hourly.insert().from_select(
            [*ROLLUP_DIMENSIONS, *ROLLUP_MEASURES], rollup_select(usage_records).order_by(None)
        )
    )
    op.create_index("ix_usage_hourly_user_hour", "usage_hourly", ["user", "hour"])
    op.create_index("ix_usage_records_user_created", "usage_records", ["user", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_usage_records_user_created", "usage_records")
    op.drop_table("usage_hourly")
