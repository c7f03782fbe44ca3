"""How far the alert outbox has been purged: one row, the latest window end whose settled alerts may be
deleted. An alert whose window ended by then is refused, so a purged alert can never fire again.

Revision ID: 0011
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    purges = op.create_table(
        "alert_outbox_purges",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("purged_through", sa.Double, nullable=False),
    )
    # The one row, so that every enqueue finds it (and on PostgreSQL locks it for share) from the start.
    op.bulk_insert(purges, [{"id": 1, "purged_through": 0.0}])


def downgrade() -> None:
    op.drop_table("alert_outbox_purges")
