"""One contract for every ``PlanRequestStore``: in memory, SQLite and PostgreSQL behave the same.

A user has at most one pending request; a request is decided once (compare-and-set on its status), so of
two administrators deciding at once exactly one wins; lists are newest first, by user and by status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from maas_gateway.database import Database
from maas_gateway.plans import InMemoryPlanRequestStore, PlanRequest, PlanRequestStore
from maas_gateway.plans.sql_store import SqlPlanRequestStore
from tests.support.postgres_server import create_database, drop_database
from tests.support.store_contract import STORE_KINDS, built, contract_runner

Contract = Callable[[PlanRequestStore], Awaitable[None]]


@pytest.fixture(params=STORE_KINDS)
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[Contract], None]]:
    """Runs a contract coroutine against a fresh store of the parametrized kind."""
    runs: Iterator[Callable[[Contract], None]] = contract_runner(
        request.param, tmp_path, InMemoryPlanRequestStore, built(SqlPlanRequestStore)
    )
    yield from runs


def _request(request_id: str, user: str = "alice", at: float = 10.0, tier: str = "premium") -> PlanRequest:
    return PlanRequest(request_id, user, "free", tier, "please", "pending", at)


def test_one_pending_request_per_user(run: Callable[[Contract], None]) -> None:
    """A second pending request of the same user is refused (None, nothing stored); another user's is
    not; once the first is decided the user may ask again."""

    async def contract(store: PlanRequestStore) -> None:
        assert await store.create(_request("pr_1")) == _request("pr_1")
        assert await store.create(_request("pr_2", tier="enterprise")) is None
        assert await store.get("pr_2") is None
        assert await store.create(_request("pr_3", user="bob")) is not None
        await store.transition(
            "pr_1", from_status="pending", to_status="denied", by="admin", reason="no", at=20.0
        )
        assert await store.create(_request("pr_4", at=30.0)) is not None

    run(contract)


def test_a_decision_is_taken_once(run: Callable[[Contract], None]) -> None:
    """The transition records who, why and when; a second one from `pending` finds nothing to move."""

    async def contract(store: PlanRequestStore) -> None:
        await store.create(_request("pr_1"))
        denied = await store.transition(
            "pr_1", from_status="pending", to_status="denied", by="root", reason="budget", at=20.0
        )
        assert denied is not None
        assert (denied.status, denied.decided_by, denied.reason, denied.decided_at) == (
            "denied",
            "root",
            "budget",
            20.0,
        )
        again = await store.transition(
            "pr_1", from_status="pending", to_status="approved", by="other", reason=None, at=21.0
        )
        assert again is None
        stored = await store.get("pr_1")
        assert stored is not None
        assert stored.status == "denied"
        missing = await store.transition(
            "pr_none", from_status="pending", to_status="approved", by="x", reason=None, at=1.0
        )
        assert missing is None

    run(contract)


def test_racing_decisions_have_exactly_one_winner(run: Callable[[Contract], None]) -> None:
    """Approve and deny sent at once, ten times over: each request ends decided by exactly one of them."""

    async def contract(store: PlanRequestStore) -> None:
        for i in range(10):
            await store.create(_request(f"pr_{i}", user=f"user{i}"))

        async def decide(request_id: str, status: str) -> bool:
            moved = await store.transition(
                request_id,
                from_status="pending",
                to_status=status,  # type: ignore[arg-type]  # approved or denied
                by=status,
                reason=None,
                at=5.0,
            )
            return moved is not None

        for i in range(10):
            wins = await asyncio.gather(decide(f"pr_{i}", "approved"), decide(f"pr_{i}", "denied"))
            assert sorted(wins) == [False, True]
            stored = await store.get(f"pr_{i}")
            assert stored is not None
            assert stored.decided_by == stored.status

    run(contract)


def test_reopening_never_makes_two_pending_requests(run: Callable[[Contract], None]) -> None:
    """An approved request can go back to pending (its tier could not be applied) unless the user has
    another pending request by then."""

    async def contract(store: PlanRequestStore) -> None:
        await store.create(_request("pr_1"))
        await store.transition(
            "pr_1", from_status="pending", to_status="approved", by="a", reason=None, at=2.0
        )
        reopened = await store.transition(
            "pr_1", from_status="approved", to_status="pending", by=None, reason=None, at=None
        )
        assert reopened is not None
        assert (reopened.status, reopened.decided_by, reopened.decided_at) == ("pending", None, None)
        await store.transition(
            "pr_1", from_status="pending", to_status="approved", by="a", reason=None, at=3.0
        )
        await store.create(_request("pr_2", at=11.0))
        blocked = await store.transition(
            "pr_1", from_status="approved", to_status="pending", by=None, reason=None, at=None
        )
        assert blocked is None

    run(contract)


def test_lists_are_newest_first_by_user_and_status(run: Callable[[Contract], None]) -> None:
    """Listing filters by user and status, counts every match, and pages newest first."""

    async def contract(store: PlanRequestStore) -> None:
        await store.create(_request("pr_a", user="alice", at=1.0))
        await store.create(_request("pr_b", user="bob", at=2.0))
        await store.create(_request("pr_c", user="carol", at=3.0))
        await store.transition(
            "pr_a", from_status="pending", to_status="approved", by="x", reason=None, at=4.0
        )
        everything, total = await store.list(user=None, status=None, offset=0, limit=10)
        assert ([r.request_id for r in everything], total) == (["pr_c", "pr_b", "pr_a"], 3)
        pending, total = await store.list(user=None, status="pending", offset=0, limit=1)
        assert ([r.request_id for r in pending], total) == (["pr_c"], 2)
        second, _ = await store.list(user=None, status="pending", offset=1, limit=1)
        assert [r.request_id for r in second] == ["pr_b"]
        mine, total = await store.list(user="alice", status=None, offset=0, limit=10)
        assert ([r.status for r in mine], total) == (["approved"], 1)

    run(contract)


def test_two_replicas_asking_at_once_store_one_pending_request(tmp_path: Path) -> None:
    """On PostgreSQL, two engines (two replicas) creating a pending request of one user at the same moment:
    the partial unique index lets exactly one in."""
    url = create_database()

    async def main() -> None:
        first, second = Database(url), Database(url, migrate=False)
        try:
            await first.ready()
            results = await asyncio.gather(
                *(
                    SqlPlanRequestStore(database).create(_request(f"pr_{i}"))
                    for i, database in enumerate((first, second, first, second))
                )
            )
            assert sum(result is not None for result in results) == 1
        finally:
            await first.aclose()
            await second.aclose()

    try:
        asyncio.run(main())
    finally:
        drop_database(url)


def test_two_administrators_on_two_replicas_racing_have_one_winner(tmp_path: Path) -> None:
    """On PostgreSQL, approve and deny of the same request from two engines at once: exactly one moves
    it, and the stored decision is the winner's."""
    url = create_database()

    async def main() -> None:
        first, second = Database(url), Database(url, migrate=False)
        try:
            await first.ready()
            for i in range(10):
                await SqlPlanRequestStore(first).create(_request(f"pr_{i}", user=f"u{i}"))
                results = await asyncio.gather(
                    SqlPlanRequestStore(first).transition(
                        f"pr_{i}", from_status="pending", to_status="approved", by="one", reason=None, at=1.0
                    ),
                    SqlPlanRequestStore(second).transition(
                        f"pr_{i}", from_status="pending", to_status="denied", by="two", reason=None, at=1.0
                    ),
                )
                winners = [result for result in results if result is not None]
                assert len(winners) == 1
                stored = await SqlPlanRequestStore(first).get(f"pr_{i}")
                assert stored == winners[0]
        finally:
            await first.aclose()
            await second.aclose()

    try:
        asyncio.run(main())
    finally:
        drop_database(url)
