"""One contract for every ``TeamStore``: in memory, SQLite and PostgreSQL behave the same.

A team's name is unique; membership is many-to-many and unique per pair; deleting a team ends its
memberships; two administrators racing to create one team get one success.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from maas_gateway.database import Database, metadata
from maas_gateway.teams import InMemoryTeamStore, Team, TeamStore
from maas_gateway.teams.sql_store import SqlTeamStore
from tests.support.postgres_server import throwaway_database
from tests.support.store_contract import STORE_KINDS, built, contract_runner

Contract = Callable[[TeamStore], Awaitable[None]]


@pytest.fixture(params=STORE_KINDS)
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[Contract], None]]:
    """Runs a contract coroutine against a fresh store of the parametrized kind."""
    runs: Iterator[Callable[[Contract], None]] = contract_runner(
        request.param, tmp_path, InMemoryTeamStore, built(SqlTeamStore)
    )
    yield from runs


def test_a_team_name_is_taken_once(run: Callable[[Contract], None]) -> None:
    """Creating a team stores it; a second of that name is refused and changes nothing; teams list by
    name; a team deleted is gone, and deleting it again says so."""

    async def contract(store: TeamStore) -> None:
        assert await store.create(Team("research", "Research", 10.0))
        assert not await store.create(Team("research", "Other", 11.0))
        assert await store.create(Team("platform", None, 12.0))
        assert await store.get("research") == Team("research", "Research", 10.0)
        assert [team.name for team in await store.all()] == ["platform", "research"]
        assert await store.delete("platform")
        assert not await store.delete("platform")
        assert await store.get("platform") is None

    run(contract)


def test_membership_is_many_to_many_and_ends_with_the_team(run: Callable[[Contract], None]) -> None:
    """A user may be in several teams and a team has several users; adding twice is refused, removing
    someone who is not a member too; a deleted team's memberships go with it (a new team of the same
    name starts empty); a team that does not exist takes no members."""

    async def contract(store: TeamStore) -> None:
        await store.create(Team("a", None, 1.0))
        await store.create(Team("b", None, 1.0))
        assert await store.add_member("a", "alice")
        assert await store.add_member("a", "bob")
        assert await store.add_member("b", "alice")
        assert not await store.add_member("a", "alice")
        assert await store.members("a") == ["alice", "bob"]
        assert await store.teams_of("alice") == ["a", "b"]
        assert await store.remove_member("a", "bob")
        assert not await store.remove_member("a", "bob")
        await store.delete("b")
        assert await store.teams_of("alice") == ["a"]
        await store.create(Team("b", None, 2.0))
        assert await store.members("b") == []
        with pytest.raises(KeyError):
            await store.add_member("nope", "alice")

    run(contract)


def test_two_administrators_creating_one_team_get_one_success(run: Callable[[Contract], None]) -> None:
    """Concurrent creations of the same team: exactly one is stored, the others are refused."""

    async def contract(store: TeamStore) -> None:
        results = await asyncio.gather(*(store.create(Team("race", str(i), float(i))) for i in range(5)))
        assert sorted(results) == [False] * 4 + [True]
        joined = await asyncio.gather(*(store.add_member("race", "carol") for _ in range(5)))
        assert sorted(joined) == [False] * 4 + [True]

    run(contract)


def test_the_migration_creates_what_the_tables_declare(tmp_path: Path) -> None:
    """Migration 0009 creates the teams tables, the key's team and the records' new columns as the
    SQLAlchemy tables declare them (SQLite; the contract runs them on PostgreSQL too)."""

    def differences(connection: Any) -> list[Any]:
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        return list(compare_metadata(MigrationContext.configure(connection), metadata))

    async def main() -> list[Any]:
        # Importing the table modules registers their tables on the metadata.
        import maas_gateway.auth.tables
        import maas_gateway.metering.tables
        import maas_gateway.teams.tables  # noqa: F401

        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
        await database.ready()
        async with database.engine.connect() as connection:
            found = await connection.run_sync(differences)
        await database.aclose()
        return found

    names = ("teams", "team_members", "'team'", "price_version")
    found = asyncio.run(main())
    assert [difference for difference in found if any(name in repr(difference) for name in names)] == []


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migration_0009_downgrades_folding_the_teams_and_upgrades_again(kind: str, tmp_path: Path) -> None:
    """Downgrading past 0009 folds rollup rows that differ only by team into one (no usage is lost) and
    drops the team tables and columns; upgrading again restores them, the folded rows of no team."""
    from alembic import command
    from sqlalchemy import text

    from maas_gateway.database.migrations import alembic_config

    def migrate(connection: Any, action: str, revision: str) -> None:
        getattr(command, action)(alembic_config(connection), revision)

    async def main() -> None:
        database = Database(url)
        await database.ready()
        columns = (
            'hour, "user", tier, model, endpoint, key_id, outcome, team, requests, prompt_tokens, '
            "completion_tokens, total_tokens, charged_tokens, cost, streamed, latency_ms"
        )
        async with database.engine.begin() as connection:
            for team, requests in (("", 1), ("research", 2), ("ops", 4)):
                await connection.execute(
                    text(
                        f"INSERT INTO usage_hourly ({columns}) VALUES "  # noqa: S608  # test constants
                        f"(10, 'alice', 'free', 'm', '/v1/chat/completions', 'k', 'ok', '{team}', "
                        f"{requests}, 0, 0, 0, 0, 0.5, 0, 1.0)"
                    )
                )
            await connection.run_sync(migrate, "downgrade", "0006")
            rows = (await connection.execute(text("SELECT requests, cost FROM usage_hourly"))).all()
            assert [tuple(row) for row in rows] == [(7, 1.5)]
            await connection.run_sync(migrate, "upgrade", "head")
            rows = (await connection.execute(text("SELECT team, requests FROM usage_hourly"))).all()
            assert [tuple(row) for row in rows] == [("", 7)]
        await database.aclose()

    with throwaway_database(kind, tmp_path) as url:
        asyncio.run(main())
