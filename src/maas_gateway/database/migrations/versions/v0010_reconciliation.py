"""Usage records say whether the backend broke their stream off and which backend served them; readings
of each backend's own token counters, for reconciliation (issue 16).

Revision ID: 0010
Revises: 0006

The rollups need no backfill: every record stored before this revision reads ``broken`` false, so its
outcome (and the rollup row it was added to) is unchanged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("broken", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("backend", sa.String(500), nullable=True))
    op.create_table(
        "backend_token_readings",
        sa.Column("backend", sa.String(500), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("prompt_tokens", sa.Double, nullable=False),
        sa.Column("generation_tokens", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("backend", "model", "at", name="pk_backend_token_readings"),
    )
    op.create_index("ix_backend_token_readings_at", "backend_token_readings", ["at"])


def downgrade() -> None:
    op.drop_index("ix_backend_token_readings_at", "backend_token_readings")
    op.drop_table("backend_token_readings")
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("backend")
        batch.drop_column("broken")
