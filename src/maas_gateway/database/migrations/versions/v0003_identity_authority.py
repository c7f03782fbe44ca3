"""Users as the authority for every identity; targeted key search; the identity change log.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _fold(text: str) -> str:
    # The same folding as maas_gateway.auth.key_repository.fold, frozen here as migrations must be.
    return unicodedata.normalize("NFKC", text).casefold()


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("source", sa.String(20), nullable=False, server_default="admin"))
        batch.add_column(sa.Column("tier_override", sa.String(100), nullable=True))
        batch.add_column(sa.Column("deprovisioned", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("seen_at", sa.Double, nullable=True))
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("search_text", sa.Text, nullable=True))
    keys = sa.table(
        "api_keys",
        sa.column("key_id", sa.String),
        sa.column("name", sa.String),
        sa.column("search_text", sa.Text),
    )
    connection = op.get_bind()
    for key_id, name in connection.execute(sa.select(keys.c.key_id, keys.c.name)).all():
        text = f"{_fold(name)}\n{_fold(key_id)}"
        connection.execute(sa.update(keys).where(keys.c.key_id == key_id).values(search_text=text))
    op.create_table(
        "identity_changes",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("at", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("identity_changes")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("search_text")
    with op.batch_alter_table("users") as batch:
        for column in ("seen_at", "deprovisioned", "tier_override", "source"):
            batch.drop_column(column)
