"""A usage record names the price version its cost was computed at.

Revision ID: 0009
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0006"  # the lead re-chains revisions when merging
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("price_version", sa.String(40), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("price_version")
