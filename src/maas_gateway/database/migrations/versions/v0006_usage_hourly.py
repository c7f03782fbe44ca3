"""Usage rollups (``usage_hourly``, ``usage_daily``, ``usage_daily_users``, ``usage_daily_models``),
backfilled from the usage records already stored.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_DIMENSIONS = ("hour", "user", "tier", "model", "endpoint", "key_id", "outcome")

# The aggregation of metering/rollups.py (rollup_select), written out so that this revision keeps
# meaning what it meant when the code moves on; tests/test_usage_rollups.py holds the two equal.
BACKFILL = """
INSERT INTO usage_hourly (hour, "user", tier, model, endpoint, key_id, outcome, requests, prompt_tokens,
                          completion_tokens, total_tokens, charged_tokens, cost, streamed, latency_ms)
SELECT hour, "user", tier, COALESCE(model, ''), endpoint, key_id,
       CASE WHEN rate_limited THEN 'rate_limited' WHEN failed THEN 'failed'
            WHEN status >= 400 THEN 'client_error' ELSE 'ok' END,
       count(*), sum(prompt_tokens), sum(completion_tokens), sum(total_tokens), sum(charged_tokens),
       sum(cost), sum(CASE WHEN streamed THEN 1 ELSE 0 END), sum(latency_ms)
FROM usage_records
GROUP BY 1, 2, 3, 4, 5, 6, 7
"""
# The days from the hours just built: every measure is a sum, so summing the hourly rows is exact.
BACKFILL_DAILY = """
INSERT INTO usage_daily (day, "user", tier, model, outcome, requests, prompt_tokens, completion_tokens,
                         total_tokens, charged_tokens, cost, streamed, latency_ms)
SELECT hour / 24, "user", tier, model, outcome, sum(requests), sum(prompt_tokens), sum(completion_tokens),
       sum(total_tokens), sum(charged_tokens), sum(cost), sum(streamed), sum(latency_ms)
FROM usage_hourly
GROUP BY 1, 2, 3, 4, 5
"""

BACKFILL_COARSE = [
    """
INSERT INTO usage_daily_users (day, "user", tier, outcome, requests, prompt_tokens, completion_tokens,
                               total_tokens, charged_tokens, cost, streamed, latency_ms)
SELECT day, "user", tier, outcome, sum(requests), sum(prompt_tokens), sum(completion_tokens),
       sum(total_tokens), sum(charged_tokens), sum(cost), sum(streamed), sum(latency_ms)
FROM usage_daily
GROUP BY 1, 2, 3, 4
""",
    """
INSERT INTO usage_daily_models (day, tier, model, outcome, requests, prompt_tokens, completion_tokens,
                                total_tokens, charged_tokens, cost, streamed, latency_ms)
SELECT day, tier, model, outcome, sum(requests), sum(prompt_tokens), sum(completion_tokens),
       sum(total_tokens), sum(charged_tokens), sum(cost), sum(streamed), sum(latency_ms)
FROM usage_daily
GROUP BY 1, 2, 3, 4
""",
]


def _measures() -> list[sa.Column[object]]:
    return [
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False),
        sa.Column("total_tokens", sa.BigInteger, nullable=False),
        sa.Column("charged_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost", sa.Double, nullable=False),
        sa.Column("streamed", sa.BigInteger, nullable=False),
        sa.Column("latency_ms", sa.Double, nullable=False),
    ]


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
        *_measures(),
        sa.PrimaryKeyConstraint(*_DIMENSIONS, name="pk_usage_hourly"),
    )
    op.create_table(
        "usage_daily",
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("user", sa.String(200), nullable=False),
        sa.Column("tier", sa.String(100), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        *_measures(),
        sa.PrimaryKeyConstraint("day", "user", "tier", "model", "outcome", name="pk_usage_daily"),
    )
    op.create_table(
        "usage_daily_users",
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("user", sa.String(200), nullable=False),
        sa.Column("tier", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        *_measures(),
        sa.PrimaryKeyConstraint("day", "user", "tier", "outcome", name="pk_usage_daily_users"),
    )
    op.create_table(
        "usage_daily_models",
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("tier", sa.String(100), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        *_measures(),
        sa.PrimaryKeyConstraint("day", "tier", "model", "outcome", name="pk_usage_daily_models"),
    )
    # The backfill runs in the migration's transaction. New replicas wait for it on the migration's
    # advisory lock; an older replica still running would insert records the backfill cannot see, so on
    # PostgreSQL its inserts wait until the migration commits, and after that it must be stopped (a
    # record it writes without rollups would be missing from reports: docs/operations.md).
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text("LOCK TABLE usage_records IN SHARE MODE"))
    op.execute(sa.text(BACKFILL))
    op.execute(sa.text(BACKFILL_DAILY))
    for statement in BACKFILL_COARSE:
        op.execute(sa.text(statement))
    op.create_index("ix_usage_hourly_user_hour", "usage_hourly", ["user", "hour"])
    op.create_index("ix_usage_daily_user_day", "usage_daily", ["user", "day"])
    op.create_index("ix_usage_records_user_created", "usage_records", ["user", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_usage_records_user_created", "usage_records")
    op.drop_table("usage_daily_models")
    op.drop_table("usage_daily_users")
    op.drop_table("usage_daily")
    op.drop_table("usage_hourly")
