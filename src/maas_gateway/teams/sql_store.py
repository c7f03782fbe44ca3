"""Teams in the shared SQL database (SQLite or PostgreSQL).

Uniqueness is the database's: a second team of a name, or a second membership, is a primary-key
conflict, so two administrators racing get one success and one ``False``.
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from maas_gateway.database import Database
from maas_gateway.teams.store import Team
from maas_gateway.teams.tables import team_members, teams

__all__ = ["SqlTeamStore"]


class SqlTeamStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def create(self, team: Team) -> bool:
        await self.database.ready()
        values = {"name": team.name, "display_name": team.display_name, "created_at": team.created_at}
        try:
            async with self.database.engine.begin() as connection:
                await connection.execute(insert(teams).values(values))
        except IntegrityError:
            return False
        return True

    async def get(self, name: str) -> Team | None:
        await self.database.ready()
        async with self.database.engine.connect() as connection:
            row = (await connection.execute(select(teams).where(teams.c.name == name))).mappings().first()
        return Team(row["name"], row["display_name"], row["created_at"]) if row is not None else None

    async def all(self) -> list[Team]:
        await self.database.ready()
        async with self.database.engine.connect() as connection:
            rows = (await connection.execute(select(teams).order_by(teams.c.name))).mappings().all()
        return [Team(row["name"], row["display_name"], row["created_at"]) for row in rows]

    async def delete(self, name: str) -> bool:
        await self.database.ready()
        async with self.database.engine.begin() as connection:
            # Members first: SQLite enforces the foreign key's cascade only with a pragma.
            await connection.execute(delete(team_members).where(team_members.c.team == name))
            result = await connection.execute(delete(teams).where(teams.c.name == name))
        return result.rowcount == 1

    async def add_member(self, team: str, user: str) -> bool:
        await self.database.ready()
        try:
            async with self.database.engine.begin() as connection:
                exists = await connection.scalar(select(teams.c.name).where(teams.c.name == team))
                if exists is None:
                    raise KeyError(f"There is no team '{team}'.")
                await connection.execute(insert(team_members).values(team=team, user=user))
        except IntegrityError:
            return False
        return True

    async def remove_member(self, team: str, user: str) -> bool:
        await self.database.ready()
        async with self.database.engine.begin() as connection:
            result = await connection.execute(
                delete(team_members).where(team_members.c.team == team, team_members.c.user == user)
            )
        return result.rowcount == 1

    async def members(self, team: str) -> list[str]:
        await self.database.ready()
        statement = (
            select(team_members.c.user).where(team_members.c.team == team).order_by(team_members.c.user)
        )
        async with self.database.engine.connect() as connection:
            return list((await connection.scalars(statement)).all())

    async def teams_of(self, user: str) -> list[str]:
        await self.database.ready()
        statement = (
            select(team_members.c.team).where(team_members.c.user == user).order_by(team_members.c.team)
        )
        async with self.database.engine.connect() as connection:
            return list((await connection.scalars(statement)).all())
