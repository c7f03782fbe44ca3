"""One contract for the portal's account and session stores: in memory, SQLite and PostgreSQL behave the same.

Accounts belong to a users row (created with them, never replaced), creation is atomic and idempotent, and
an existing account's password is never reset by a second create. Sessions are found by the token's digest
only, touched forward only, ended one by one or all of a user's at once, and purged by either expiry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from maas_gateway.auth.key_repository import KeyRepository, StoredUser
from maas_gateway.auth.memory_key_repository import InMemoryKeyRepository
from maas_gateway.auth.sql_key_repository import SqlKeyRepository
from maas_gateway.database import Database
from maas_gateway.portal.accounts import Account, AccountStore
from maas_gateway.portal.memory_accounts import InMemoryAccountStore
from maas_gateway.portal.sessions import InMemorySessionStore, Session, SessionStore
from maas_gateway.portal.sql_accounts import SqlAccountStore
from maas_gateway.portal.sql_sessions import SqlSessionStore
from tests.support.postgres_server import create_database, drop_database


@dataclass
class Stores:
    users: KeyRepository
    accounts: AccountStore
    sessions: SessionStore


Contract = Callable[[Stores], Awaitable[None]]


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[Contract], None]]:
    """Runs a contract coroutine against fresh stores of the parametrized kind."""
    url: str | None = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'portal.db'}"
    elif request.param == "postgresql":
        url = create_database()

    def runner(contract: Contract) -> None:
        async def main() -> None:
            if url is None:
                users = InMemoryKeyRepository()
                await contract(Stores(users, InMemoryAccountStore(users), InMemorySessionStore()))
                return
            database = Database(url)
            try:
                users_sql = SqlKeyRepository(database)
                await users_sql.start()
                await contract(Stores(users_sql, SqlAccountStore(database), SqlSessionStore(database)))
            finally:
                await database.aclose()

        asyncio.run(main())

    yield runner
    if request.param == "postgresql" and url is not None:
        drop_database(url)


def _account(user: str = "dev1", password_hash: str = "h1", is_admin: bool = False) -> Account:  # noqa: S107  # a stand-in hash, not a password
    return Account(user, password_hash, is_admin, 10.0, 10.0)


def _owner(user: str = "dev1", tier: str = "free") -> StoredUser:
    return StoredUser(user, tier, None, False, 10.0, "admin")


def _session(digest: str = "d1", user: str = "dev1", created: float = 100.0, seen: float = 100.0) -> Session:
    return Session(digest, user, "csrf-" + digest, created, seen)


def test_an_account_creates_its_users_row_and_a_second_create_changes_nothing(
    run: Callable[[Contract], None],
) -> None:
    """The first create stores the account and its users row; a second neither resets the password nor
    replaces an existing users row's tier."""

    async def contract(stores: Stores) -> None:
        assert await stores.accounts.create(_account(), _owner())
        user = await stores.users.get_user("dev1")
        assert user is not None
        assert user.tier == "free"
        assert not await stores.accounts.create(_account(password_hash="h2", is_admin=True), _owner(tier="x"))
        account = await stores.accounts.get("dev1")
        assert account == _account()
        user = await stores.users.get_user("dev1")
        assert user is not None
        assert user.tier == "free"
        assert await stores.accounts.get("nobody") is None

    run(contract)


def test_an_account_for_an_existing_user_keeps_that_users_row(run: Callable[[Contract], None]) -> None:
    """A user who exists already (created by an administrator) gets an account without their row changing."""

    async def contract(stores: Stores) -> None:
        assert await stores.users.add_user(StoredUser("bob", "premium", "Bob", False, 1.0))
        assert await stores.accounts.create(_account("bob"), _owner("bob", tier="free"))
        user = await stores.users.get_user("bob")
        assert user is not None
        assert (user.tier, user.display_name) == ("premium", "Bob")

    run(contract)


def test_password_and_admin_changes_touch_only_their_account(run: Callable[[Contract], None]) -> None:
    """A new hash and the admin flag change one account; changes to an unknown account report False."""

    async def contract(stores: Stores) -> None:
        await stores.accounts.create(_account("a"), _owner("a"))
        await stores.accounts.create(_account("b"), _owner("b"))
        assert await stores.accounts.set_password_hash("a", "new", 20.0)
        assert await stores.accounts.set_admin("b", True)
        assert not await stores.accounts.set_password_hash("c", "new", 20.0)
        assert not await stores.accounts.set_admin("c", True)
        a, b = await stores.accounts.get("a"), await stores.accounts.get("b")
        assert a is not None
        assert (a.password_hash, a.password_changed_at, a.is_admin) == ("new", 20.0, False)
        assert b is not None
        assert (b.password_hash, b.is_admin) == ("h1", True)
        assert await stores.accounts.list_admins() == ["b"]

    run(contract)


def test_sessions_are_found_by_digest_and_touched_forward_only(run: Callable[[Contract], None]) -> None:
    """A session is read back as stored; a touch moves last use forward, never back."""

    async def contract(stores: Stores) -> None:
        await stores.accounts.create(_account(), _owner())
        await stores.sessions.create(_session())
        assert await stores.sessions.get("d1") == _session()
        assert await stores.sessions.get("other") is None
        await stores.sessions.touch("d1", 150.0)
        await stores.sessions.touch("d1", 120.0)
        stored = await stores.sessions.get("d1")
        assert stored is not None
        assert stored.last_seen_at == 150.0

    run(contract)


def test_sessions_end_one_by_one_or_all_of_a_user(run: Callable[[Contract], None]) -> None:
    """Deleting one session leaves the others; ending a user's sessions leaves other users' sessions."""

    async def contract(stores: Stores) -> None:
        for name in ("dev1", "dev2"):
            await stores.accounts.create(_account(name), _owner(name))
        await stores.sessions.create(_session("a"))
        await stores.sessions.create(_session("b"))
        await stores.sessions.create(_session("c", user="dev2"))
        assert await stores.sessions.delete("a")
        assert not await stores.sessions.delete("a")
        assert await stores.sessions.delete_user("dev1") == 1
        assert await stores.sessions.get("b") is None
        assert await stores.sessions.get("c") is not None

    run(contract)


def test_purge_removes_sessions_past_either_expiry(run: Callable[[Contract], None]) -> None:
    """Idle sessions and sessions past their lifetime are purged; a live one stays."""

    async def contract(stores: Stores) -> None:
        await stores.accounts.create(_account(), _owner())
        await stores.sessions.create(_session("idle", created=100.0, seen=100.0))
        await stores.sessions.create(_session("old", created=10.0, seen=500.0))
        await stores.sessions.create(_session("live", created=400.0, seen=500.0))
        assert await stores.sessions.purge(idle_before=200.0, created_before=50.0) == 2
        assert await stores.sessions.get("live") is not None

    run(contract)
