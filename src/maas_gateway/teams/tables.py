"""Teams and their members in the shared database (see ``maas_gateway.database``).

Members are user names, not a foreign key to ``users``: a configuration-file user may join a team before
they ever have a row.
"""

from __future__ import annotations

from sqlalchemy import Column, Double, ForeignKey, Index, PrimaryKeyConstraint, String, Table

from maas_gateway.database import metadata

__all__ = ["team_members", "teams"]

teams = Table(
    "teams",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("display_name", String(200), nullable=True),
    Column("created_at", Double, nullable=False),
)

team_members = Table(
    "team_members",
    metadata,
    Column("team", String(100), ForeignKey("teams.name", ondelete="CASCADE"), nullable=False),
    Column("user", String(200), nullable=False),
    PrimaryKeyConstraint("team", "user", name="pk_team_members"),
    Index("ix_team_members_user", "user"),  # a user's teams, checked at every key creation for a team
)
