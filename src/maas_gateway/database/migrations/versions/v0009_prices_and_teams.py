"""Price versions and teams: a usage record names the price version its cost was computed at and the
team it is charged to; teams, their members, and a key's team; the team as a rollup dimension.

The rollups gain ``team`` at the end of their primary keys (every row so far is no team, ''), and a
small ``usage_daily_teams`` for chargeback over everyone, backfilled from ``usage_daily``.

Revision ID: 0009
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0010"
branch_labels = None
depends_on = None


_HOURLY = ("hour", "user", "tier", "model", "endpoint", "key_id", "outcome")
_DAILY = ("day", "user", "tier", "model", "outcome")
_MEASURES = (
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "charged_tokens",
    "cost",
    "streamed",
    "latency_ms",
)
_SUMS = ", ".join(f"sum({name}) AS {name}" for name in _MEASURES)
# The SQL below is built from this module's constants only (names of tables and columns), never input.
_TEAMS_INTO = f"usage_daily_teams (day, team, tier, model, outcome, {', '.join(_MEASURES)})"
_TEAMS_FROM = f"day, team, tier, model, outcome, {_SUMS} FROM usage_daily GROUP BY 1, 2, 3, 4, 5"
BACKFILL_TEAMS = f"INSERT INTO {_TEAMS_INTO} SELECT {_TEAMS_FROM}"


def _measures() -> list[sa.Column[object]]:
    return [
        sa.Column(name, sa.Double if name in ("cost", "latency_ms") else sa.BigInteger, nullable=False)
        for name in _MEASURES
    ]


def _team_rollups() -> None:
    for table, dimensions in (("usage_hourly", _HOURLY), ("usage_daily", _DAILY)):
        # SQLite rebuilds the table (batch mode): a primary key cannot change in place there.
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("team", sa.String(100), nullable=False, server_default=""))
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", [*dimensions, "team"])
    op.create_table(
        "usage_daily_teams",
        sa.Column("day", sa.Integer, nullable=False),
        sa.Column("team", sa.String(100), nullable=False, server_default=""),
        sa.Column("tier", sa.String(100), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        *_measures(),
        sa.PrimaryKeyConstraint("day", "team", "tier", "model", "outcome", name="pk_usage_daily_teams"),
    )
    op.execute(sa.text(BACKFILL_TEAMS))


def upgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("price_version", sa.String(40), nullable=False, server_default=""))
        batch.add_column(sa.Column("team", sa.String(100), nullable=False, server_default=""))
    op.create_table(
        "teams",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=True),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.create_table(
        "team_members",
        sa.Column("team", sa.String(100), sa.ForeignKey("teams.name", ondelete="CASCADE"), nullable=False),
        sa.Column("user", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("team", "user", name="pk_team_members"),
    )
    op.create_index("ix_team_members_user", "team_members", ["user"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("team", sa.String(100), nullable=True))
    _team_rollups()


def downgrade() -> None:
    op.drop_table("usage_daily_teams")
    for table, dimensions in (("usage_hourly", _HOURLY), ("usage_daily", _DAILY)):
        # Rows of one key but different teams would collide: fold them first (SQLite and PostgreSQL).
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"pk_{table}", type_="primary")
        keys = ", ".join(f'"{name}"' for name in dimensions)
        folded = f"{table}_folded"
        fold = f"CREATE TABLE {folded} AS SELECT {keys}, {_SUMS} FROM {table} GROUP BY {keys}"  # noqa: S608
        op.execute(sa.text(fold))
        op.execute(sa.text(f"DELETE FROM {table}"))  # noqa: S608  # a constant table name
        columns = ", ".join(_MEASURES)
        refill = f"INSERT INTO {table} ({keys}, {columns}) SELECT * FROM {folded}"  # noqa: S608  # constants
        op.execute(sa.text(refill))
        op.drop_table(folded)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("team")
            batch.create_primary_key(f"pk_{table}", list(dimensions))
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("team")
    op.drop_index("ix_team_members_user", "team_members")
    op.drop_table("team_members")
    op.drop_table("teams")
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("team")
        batch.drop_column("price_version")
