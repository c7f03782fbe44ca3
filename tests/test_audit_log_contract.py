"""One contract for every ``AuditLog``: in memory, SQLite and PostgreSQL behave the same.

Entries are appended with increasing ids and read newest first; every filter (actor, action, subject,
time range) and the cursor give the same pages everywhere; credentials never reach the stored details;
SQL entries survive a restart, and two replicas writing at once both land.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from maas_gateway.audit import Actor, AuditLog, AuditQuery, InMemoryAuditLog
from maas_gateway.audit.sql_log import SqlAuditLog
from maas_gateway.database import Database
from tests.support.postgres_server import create_database, drop_database
from tests.support.store_contract import STORE_KINDS, built, contract_runner

Contract = Callable[[AuditLog], Awaitable[None]]

ADMIN = Actor("admin key", "admin_key", "10.0.0.1")
ALICE = Actor("alice", "portal", "10.0.0.2")


@pytest.fixture(params=STORE_KINDS)
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[Contract], None]]:
    """Runs a contract coroutine against a fresh audit log of the parametrized kind."""
    runs: Iterator[Callable[[Contract], None]] = contract_runner(
        request.param, tmp_path, InMemoryAuditLog, built(SqlAuditLog)
    )
    yield from runs


def test_entries_come_back_newest_first_with_what_was_recorded(run: Callable[[Contract], None]) -> None:
    """Each entry keeps who, kind, address, action, subject, details and time; the newest comes first."""

    async def contract(log: AuditLog) -> None:
        first = await log.record(ADMIN, "key.revoke", "key_a", {"user": "bob"}, 100.0)
        second = await log.record(ALICE, "user.update", "bob", {"tier": "premium", "disabled": None}, 101.0)
        assert second.entry_id > first.entry_id
        page = await log.search(AuditQuery())
        assert [e.entry_id for e in page.entries] == [second.entry_id, first.entry_id]
        newest = page.entries[0]
        assert (newest.actor, newest.actor_kind, newest.address) == ("alice", "portal", "10.0.0.2")
        assert (newest.action, newest.subject, newest.at) == ("user.update", "bob", 101.0)
        assert newest.details == {"tier": "premium", "disabled": None}
        assert page.next_cursor is None

    run(contract)


def test_filters_combine_and_the_time_range_is_half_open(run: Callable[[Contract], None]) -> None:
    """actor, action and subject match exactly; since is inclusive and until exclusive."""

    async def contract(log: AuditLog) -> None:
        await log.record(ADMIN, "key.revoke", "key_a", {}, 100.0)
        await log.record(ALICE, "key.revoke", "key_b", {}, 200.0)
        await log.record(ALICE, "user.update", "bob", {}, 300.0)

        async def subjects(**filters: object) -> list[str]:
            page = await log.search(AuditQuery(**filters))  # type: ignore[arg-type]  # the test's own names
            return [entry.subject for entry in page.entries]

        assert await subjects(actor="alice") == ["bob", "key_b"]
        assert await subjects(action="key.revoke") == ["key_b", "key_a"]
        assert await subjects(subject="key_a") == ["key_a"]
        assert await subjects(actor="alice", action="key.revoke") == ["key_b"]
        assert await subjects(since=200.0, until=300.0) == ["key_b"]
        assert await subjects(actor="ALICE") == []
        assert await subjects(actor="%") == []

    run(contract)


def test_the_cursor_pages_through_everything_once(run: Callable[[Contract], None]) -> None:
    """Pages of two, following next_cursor, list every entry exactly once, newest first, then stop."""

    async def contract(log: AuditLog) -> None:
        for i in range(5):
            await log.record(ADMIN, "key.revoke", f"key_{i}", {}, 100.0 + i)
        seen: list[str] = []
        cursor: int | None = None
        for _ in range(10):
            page = await log.search(AuditQuery(before=cursor, limit=2))
            seen += [entry.subject for entry in page.entries]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == ["key_4", "key_3", "key_2", "key_1", "key_0"]

    run(contract)


def test_credentials_never_reach_the_stored_details(run: Callable[[Contract], None]) -> None:
    """Values under a secret's name, and strings shaped like a lifecycle key, are stored redacted, at
    any depth, whatever the caller passed."""

    async def contract(log: AuditLog) -> None:
        secret = "maas_abcdefghij_" + "s" * 43
        details = {
            "key": secret,
            "password": "hunter2",
            "nested": {"token": "eyJ...", "note": secret, "fine": 1},
            "list": [secret, "ok"],
            "name": "laptop",
            "reason": f"pasted {secret} by mistake",
            "user": "maas_fan",
        }
        await log.record(ADMIN, "key.create", "key_a", details, 1.0)
        stored = (await log.search(AuditQuery())).entries[0].details
        assert "hunter2" not in str(stored)
        assert secret not in str(stored)
        assert stored["name"] == "laptop"
        assert stored["nested"]["fine"] == 1
        assert stored["list"][1] == "ok"
        assert stored["reason"] == "pasted [redacted] by mistake"
        assert stored["user"] == "maas_fan"  # only a key's shape is redacted, not every maas_ name

    run(contract)


def test_concurrent_writers_all_land(run: Callable[[Contract], None]) -> None:
    """Fifty entries written at once each get their own id; none is lost."""

    async def contract(log: AuditLog) -> None:
        entries = await asyncio.gather(
            *(log.record(ADMIN, "key.revoke", f"key_{i}", {}, 1.0) for i in range(50))
        )
        assert len({entry.entry_id for entry in entries}) == 50
        page = await log.search(AuditQuery(limit=100))
        assert sorted(entry.subject for entry in page.entries) == sorted(f"key_{i}" for i in range(50))

    run(contract)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_replicas_write_at_once_and_entries_survive_a_restart(kind: str, tmp_path: Path) -> None:
    """Two processes' worth of engines on one database write together; a third, started afterwards (a
    restarted gateway), reads every entry."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'audit.db'}" if kind == "sqlite" else create_database()

    async def write(replica: str, *, migrate: bool = False) -> None:
        # Alembic's run is not safe twice at once in one process (real replicas are separate processes):
        # the first writer migrates, the racing two find the schema in place.
        database = Database(url, migrate=migrate)
        try:
            log = SqlAuditLog(database)
            await asyncio.gather(
                *(
                    log.record(Actor(replica, "portal", "::1"), "key.revoke", f"k{i}", {}, 1.0)
                    for i in range(20)
                )
            )
        finally:
            await database.aclose()

    async def main() -> None:
        await write("warmup", migrate=True)
        await asyncio.gather(write("one"), write("two"))
        database = Database(url)
        try:
            page = await SqlAuditLog(database).search(AuditQuery(limit=500))
        finally:
            await database.aclose()
        actors = [entry.actor for entry in page.entries]
        assert (actors.count("one"), actors.count("two"), actors.count("warmup")) == (20, 20, 20)

    try:
        asyncio.run(main())
    finally:
        if kind == "postgresql":
            drop_database(url)
