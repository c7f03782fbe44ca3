"""The runner every storage contract suite shares: one contract coroutine against a fresh store in
memory, on SQLite and on PostgreSQL (a throwaway database each), so the three are proven to behave alike.

A suite's fixture names its two factories and hands the runner to its tests::

    @pytest.fixture(params=STORE_KINDS)
    def run(request, tmp_path):
        yield from contract_runner(request.param, tmp_path, InMemoryTeamStore, built(SqlTeamStore))
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Protocol, TypeVar

from maas_gateway.database import Database
from tests.support.postgres_server import create_database, drop_database

__all__ = ["STORE_KINDS", "built", "contract_runner", "started"]

STORE_KINDS = ("memory", "sqlite", "postgresql")

Store = TypeVar("Store")


class _Startable(Protocol):
    async def start(self) -> None: ...


Startable = TypeVar("Startable", bound=_Startable)


def built(factory: Callable[[Database], Store]) -> Callable[[Database], Awaitable[Store]]:
    """A SQL store that is ready once constructed."""

    async def build(database: Database) -> Store:
        return factory(database)

    return build


def started(factory: Callable[[Database], Startable]) -> Callable[[Database], Awaitable[Startable]]:
    """A SQL store that must be started (migrated, connected) before use."""

    async def build(database: Database) -> Startable:
        store = factory(database)
        await store.start()
        return store

    return build


def contract_runner(
    kind: str,
    tmp_path: Path,
    memory: Callable[[], Store],
    sql: Callable[[Database], Awaitable[Store]],
) -> Iterator[Callable[[Callable[[Store], Awaitable[None]]], None]]:
    """Yields a function that runs a contract coroutine against a fresh store of ``kind``; a PostgreSQL
    database made for it is dropped afterwards."""
    url: str | None = None
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'contract.db'}"
    elif kind == "postgresql":
        url = create_database()

    def runner(contract: Callable[[Store], Awaitable[None]]) -> None:
        async def main() -> None:
            if url is None:
                await contract(memory())
                return
            database = Database(url)
            try:
                await contract(await sql(database))
            finally:
                await database.aclose()

        asyncio.run(main())

    try:
        yield runner
    finally:
        if kind == "postgresql" and url is not None:
            drop_database(url)
