"""One contract for every ``KeyRepository``: in memory, SQLite and PostgreSQL behave the same.

Each test runs against all three. Changes are targeted (a stale write never undoes a revocation or a
disable), creation is atomic, search treats ``%`` and ``_`` literally and ignores case the same way
everywhere, and every change other replicas must see is in the change log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from maas_gateway.auth.key_repository import KeyRepository, StoredKey, StoredUser, UserChanges
from maas_gateway.auth.memory_key_repository import InMemoryKeyRepository
from maas_gateway.auth.sql_key_repository import SqlKeyRepository
from tests.support.store_contract import STORE_KINDS, contract_runner, started

Contract = Callable[[KeyRepository], Awaitable[None]]


@pytest.fixture(params=STORE_KINDS)
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[Contract], None]]:
    """Runs a contract coroutine against a fresh repository of the parametrized kind."""
    runs: Iterator[Callable[[Contract], None]] = contract_runner(
        request.param, tmp_path, InMemoryKeyRepository, started(SqlKeyRepository)
    )
    yield from runs


def _user(name: str = "alice", tier: str = "free") -> StoredUser:
    return StoredUser(name, tier, None, False, 1.0)


def _key(key_id: str = "key_a", user: str = "alice", name: str = "laptop", **fields: object) -> StoredKey:
    values: dict[str, object] = {
        "key_id": key_id,
        "key_hash": "h" + key_id,
        "user": user,
        "name": name,
        "models": None,
        "ephemeral": False,
        "created_at": 10.0,
        "expires_at": 1000.0,
        "revoked_at": None,
        "last_used_at": None,
    }
    values.update(fields)
    return StoredKey(**values)  # type: ignore[arg-type]  # the test's own field names


def test_create_key_creates_its_new_owner_in_the_same_step(run: Callable[[Contract], None]) -> None:
    """A key with a new owner stores both; an existing owner is kept as stored, not replaced."""

    async def contract(repo: KeyRepository) -> None:
        stored = await repo.create_key(_key(), _user(tier="premium"))
        assert stored is not None
        assert stored.tier == "premium"
        again = await repo.create_key(_key("key_b"), _user(tier="free"))
        assert again is not None
        assert again.tier == "premium"
        assert (await repo.get_key("key_b")) is not None
        with pytest.raises(ValueError, match="no user"):
            await repo.create_key(_key("key_c", user="nobody"))
        assert await repo.get_key("key_c") is None

    run(contract)


def test_touch_never_undoes_a_revocation(run: Callable[[Contract], None]) -> None:
    """Recording a use sets only `last_used_at`, only forwards: a revoked key stays revoked."""

    async def contract(repo: KeyRepository) -> None:
        await repo.create_key(_key(), _user())
        revoked = await repo.revoke_key("key_a", 50.0)
        assert revoked is not None
        assert revoked.revoked_at == 50.0
        await repo.touch_key("key_a", 60.0)
        await repo.touch_key("key_a", 55.0)
        key = await repo.get_key("key_a")
        assert key is not None
        assert (key.revoked_at, key.last_used_at) == (50.0, 60.0)

    run(contract)


def test_revocation_only_moves_earlier(run: Callable[[Contract], None]) -> None:
    """A scheduled revocation (rotation grace) can be brought forward, never pushed back or undone."""

    async def contract(repo: KeyRepository) -> None:
        await repo.create_key(_key(), _user())
        await repo.revoke_key("key_a", 500.0)
        assert (await repo.revoke_key("key_a", 300.0)).revoked_at == 300.0  # type: ignore[union-attr]  # exists
        assert (await repo.revoke_key("key_a", 400.0)).revoked_at == 300.0  # type: ignore[union-attr]  # exists
        assert await repo.revoke_key("key_missing", 1.0) is None

    run(contract)


def test_user_updates_change_only_the_named_fields(run: Callable[[Contract], None]) -> None:
    """Disabling and moving a user are independent writes: neither undoes the other."""

    async def contract(repo: KeyRepository) -> None:
        assert await repo.add_user(_user())
        await repo.update_user("alice", UserChanges(disabled=True))
        await repo.update_user("alice", UserChanges(tier_override="enterprise"))
        await repo.update_user("alice", UserChanges(tier="premium", seen_at=5.0))
        user = await repo.get_user("alice")
        assert user is not None
        assert (user.disabled, user.tier_override, user.tier, user.seen_at) == (
            True,
            "enterprise",
            "premium",
            5.0,
        )
        cleared = await repo.update_user("alice", UserChanges(clear_tier_override=True))
        assert cleared is not None
        assert cleared.tier_override is None
        assert cleared.disabled
        assert await repo.update_user("nobody", UserChanges(disabled=True)) is None

    run(contract)


def test_concurrent_first_creations_make_one_user(run: Callable[[Contract], None]) -> None:
    """Ten simultaneous creations of one new user: exactly one succeeds, none fails with an error."""

    async def contract(repo: KeyRepository) -> None:
        results = await asyncio.gather(*(repo.add_user(_user(tier=f"t{i}")) for i in range(10)))
        assert sorted(results) == [False] * 9 + [True]
        first_keys = [_key(f"key_b{i}", "bob") for i in range(5)]
        await asyncio.gather(*(repo.create_key(key, _user("bob")) for key in first_keys))
        page = await repo.list_keys(user="bob", search=None, include_inactive=True, now=0, offset=0, limit=10)
        assert page.total == 5

    run(contract)


def test_search_is_literal_and_ignores_case_everywhere(run: Callable[[Contract], None]) -> None:
    """`%` and `_` match themselves; case and Unicode forms are ignored the same way on every store."""

    async def contract(repo: KeyRepository) -> None:
        await repo.add_user(_user())
        names = {"key_1": "100% done", "key_2": "a_b", "key_3": "axb", "key_4": "Über Straße", "key_5": "ci"}
        for key_id, name in names.items():
            await repo.create_key(_key(key_id, name=name))

        async def found(search: str) -> list[str]:
            page = await repo.list_keys(
                user=None, search=search, include_inactive=True, now=0, offset=0, limit=50
            )
            return [key.key_id for key in page.keys]

        assert await found("%") == ["key_1"]
        assert await found("a_b") == ["key_2"]
        assert await found("über") == ["key_4"]
        assert await found("STRASSE") == ["key_4"]
        assert await found("KEY_3") == ["key_3"]
        assert await found("\\") == []

    run(contract)


def test_changes_other_replicas_must_see_are_logged(run: Callable[[Contract], None]) -> None:
    """Revocations, user changes and creations are in the change log; a touch or a `seen_at` is not."""

    async def contract(repo: KeyRepository) -> None:
        start = await repo.last_change()
        await repo.create_key(_key(), _user())
        await repo.touch_key("key_a", 20.0)
        await repo.revoke_key("key_a", 30.0)
        await repo.revoke_key("key_a", 40.0)  # no change: revoked already
        await repo.update_user("alice", UserChanges(seen_at=9.0))
        await repo.update_user("alice", UserChanges(disabled=True))
        changes = await repo.changes_since(start)
        assert [(c.kind, c.subject) for c in changes] == [
            ("created", "alice"),
            ("key", "hkey_a"),
            ("user", "alice"),
        ]
        assert [c.seq for c in changes] == sorted(c.seq for c in changes)
        assert await repo.last_change() == changes[-1].seq
        assert await repo.changes_since(changes[-1].seq) == []

    run(contract)


def test_purge_deletes_keys_that_ended(run: Callable[[Contract], None]) -> None:
    """Expired and revoked keys older than the cut-off go; active ones stay."""

    async def contract(repo: KeyRepository) -> None:
        await repo.create_key(_key("key_old", expires_at=50.0), _user())
        await repo.create_key(_key("key_revoked"))
        await repo.revoke_key("key_revoked", 60.0)
        await repo.create_key(_key("key_live"))
        assert await repo.purge_keys(before=100.0) == 2
        assert await repo.find_key("hkey_live") is not None
        assert await repo.find_key("hkey_old") is None

    run(contract)
