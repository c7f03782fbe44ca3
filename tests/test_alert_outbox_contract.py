"""One contract for every ``AlertOutbox``: in memory, SQLite and PostgreSQL behave the same.

An alert is stored once per (webhook, user, limit, window start, threshold) whoever asks; a claimed alert
is held by its claimer until its lease ends and counted as an attempt; only the current claimer can settle
it; a claim that outlived its lease is taken over; delivered and failed alerts are never claimed again;
a purge deletes settled alerts of ended windows only, and none of them can ever be stored (fire) again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from maas_gateway.alerts.events import AlertEvent
from maas_gateway.alerts.outbox import AlertOutbox, InMemoryAlertOutbox
from maas_gateway.alerts.sql_outbox import SqlAlertOutbox
from tests.support.store_contract import STORE_KINDS, contract_runner, started

Contract = Callable[[AlertOutbox], Awaitable[None]]


@pytest.fixture(params=STORE_KINDS)
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[Contract], None]]:
    """Runs a contract coroutine against a fresh outbox of the parametrized kind."""
    runs: Iterator[Callable[[Contract], None]] = contract_runner(
        request.param, tmp_path, InMemoryAlertOutbox, started(SqlAlertOutbox)
    )
    yield from runs


def _event(alert_id: str = "a1", threshold: int = 80, **fields: object) -> AlertEvent:
    values: dict[str, object] = {
        "alert_id": alert_id,
        "webhook": "ops",
        "user": "alice",
        "tier": "free",
        "limit_key": "tokens/1h/*",
        "limit": 1000,
        "unit": "tokens",
        "window": "1h",
        "window_start": 3600,
        "window_end": 7200,
        "threshold": threshold,
        "used": 812,
        "created_at": 4000.0,
    }
    values.update(fields)
    return AlertEvent(**values)  # type: ignore[arg-type]  # the test's own field names


def test_an_alert_is_stored_once_per_budget_window_and_threshold(run: Callable[[Contract], None]) -> None:
    """A second alert for the same webhook, user, limit, window and threshold is refused, whatever its
    id; another threshold, window, limit, user or webhook is a different alert."""

    async def contract(outbox: AlertOutbox) -> None:
        assert await outbox.enqueue(_event("a1"))
        assert not await outbox.enqueue(_event("a2"))
        assert await outbox.state("a2") is None
        assert await outbox.enqueue(_event("a3", threshold=90))
        assert await outbox.enqueue(_event("a4", window_start=7200, window_end=10800))
        assert await outbox.enqueue(_event("a5", limit_key="requests/1h/*"))
        assert await outbox.enqueue(_event("a6", user="bob"))
        assert await outbox.enqueue(_event("a7", webhook="finance"))
        state = await outbox.state("a1")
        assert state is not None
        assert (state.state, state.attempts, state.delivered_at) == ("pending", 0, None)

    run(contract)


def test_concurrent_enqueues_of_one_alert_store_exactly_one(run: Callable[[Contract], None]) -> None:
    """Twenty replicas' worth of concurrent inserts of the same threshold: exactly one wins."""

    async def contract(outbox: AlertOutbox) -> None:
        results = await asyncio.gather(*(outbox.enqueue(_event(f"r{i}")) for i in range(20)))
        assert results.count(True) == 1

    run(contract)


def test_claim_takes_due_alerts_oldest_first_and_holds_them(run: Callable[[Contract], None]) -> None:
    """A claim returns due pending alerts (oldest first, up to the limit) as attempt 1; a second claim
    within the lease gets none of them; alerts due later wait."""

    async def contract(outbox: AlertOutbox) -> None:
        await outbox.enqueue(_event("late", threshold=50, created_at=5000.0))
        await outbox.enqueue(_event("old", threshold=80, created_at=4000.0))
        await outbox.enqueue(_event("mid", threshold=90, created_at=4500.0))
        claimed = await outbox.claim(now=4600.0, lease=600.0, limit=10)
        assert [c.event.alert_id for c in claimed] == ["old", "mid"]
        assert [c.attempt for c in claimed] == [1, 1]
        assert claimed[0].event == _event("old", threshold=80, created_at=4000.0)
        assert await outbox.claim(now=4610.0, lease=60.0, limit=10) == []
        assert [c.event.alert_id for c in await outbox.claim(now=5000.0, lease=60.0, limit=1)] == ["late"]

    run(contract)


def test_an_expired_lease_is_taken_over_and_the_old_claimer_cannot_settle(
    run: Callable[[Contract], None],
) -> None:
    """A sender that died keeps the alert only until its lease ends; then another claims it (attempt 2),
    and the first sender's late answer changes nothing."""

    async def contract(outbox: AlertOutbox) -> None:
        await outbox.enqueue(_event())
        first = (await outbox.claim(now=4000.0, lease=60.0, limit=5))[0]
        second = (await outbox.claim(now=4061.0, lease=60.0, limit=5))[0]
        assert second.attempt == 2
        assert second.claim != first.claim
        assert not await outbox.delivered(first, now=4062.0)
        assert not await outbox.retry_at(first, 5000.0, "late")
        assert not await outbox.give_up(first, 4062.0, "late")
        assert await outbox.delivered(second, now=4063.0)
        state = await outbox.state("a1")
        assert state is not None
        assert (state.state, state.attempts, state.delivered_at) == ("delivered", 2, 4063.0)

    run(contract)


def test_retry_releases_the_alert_until_its_time_and_records_the_error(
    run: Callable[[Contract], None],
) -> None:
    """A failed attempt is released to be claimed again at the retry time, not before."""

    async def contract(outbox: AlertOutbox) -> None:
        await outbox.enqueue(_event())
        claimed = (await outbox.claim(now=4000.0, lease=60.0, limit=5))[0]
        assert await outbox.retry_at(claimed, 4010.0, "The webhook answered 503.")
        assert await outbox.claim(now=4009.0, lease=60.0, limit=5) == []
        state = await outbox.state("a1")
        assert state is not None
        assert (state.state, state.next_attempt_at, state.last_error) == (
            "pending",
            4010.0,
            "The webhook answered 503.",
        )
        again = await outbox.claim(now=4010.0, lease=60.0, limit=5)
        assert [c.attempt for c in again] == [2]

    run(contract)


def test_settled_alerts_are_never_claimed_again(run: Callable[[Contract], None]) -> None:
    """Delivered and given-up alerts stay settled: no claim returns them, no second settle changes them;
    a very long error is cut to fit."""

    async def contract(outbox: AlertOutbox) -> None:
        await outbox.enqueue(_event("ok", threshold=50))
        await outbox.enqueue(_event("bad", threshold=80))
        ok, bad = await outbox.claim(now=4000.0, lease=60.0, limit=5)
        assert await outbox.delivered(ok, now=4001.0)
        assert await outbox.give_up(bad, now=4001.0, error="x" * 2000)
        assert not await outbox.delivered(ok, now=4002.0)
        assert await outbox.claim(now=7000.0, lease=60.0, limit=5) == []
        state = await outbox.state("bad")
        assert state is not None
        assert state.state == "failed"
        assert state.last_error == "x" * 500

    run(contract)


def test_two_senders_claiming_at_once_never_share_an_alert(run: Callable[[Contract], None]) -> None:
    """Concurrent claims split the due alerts: each alert is held by exactly one sender."""

    async def contract(outbox: AlertOutbox) -> None:
        for threshold in range(1, 41):
            await outbox.enqueue(replace(_event(f"t{threshold}"), threshold=threshold))
        batches = await asyncio.gather(*(outbox.claim(now=4000.0, lease=60.0, limit=7) for _ in range(8)))
        ids = [claimed.event.alert_id for batch in batches for claimed in batch]
        assert len(ids) == len(set(ids)) == 40

    run(contract)


def test_listed_alerts_are_newest_first_narrowed_to_owners_and_open_windows(
    run: Callable[[Contract], None],
) -> None:
    """The portal's listing: newest first with each alert's delivery state, only the owners asked for
    (a team's budget is 'team:NAME'), only windows ending after the time given, at most ``limit``."""

    async def contract(outbox: AlertOutbox) -> None:
        await outbox.enqueue(_event("mine", threshold=50, created_at=4000.0))
        await outbox.enqueue(_event("team", user="team:research", threshold=50, created_at=4100.0))
        await outbox.enqueue(_event("other", user="team:secret", threshold=50, created_at=4200.0))
        await outbox.enqueue(_event("old", threshold=80, window_start=0, window_end=3600, created_at=3000.0))
        claimed = (await outbox.claim(now=4300.0, lease=60.0, limit=1))[0]
        assert claimed.event.alert_id == "old"
        await outbox.give_up(claimed, 4301.0, "The webhook answered 500.")

        everyone = await outbox.listed()
        assert [record.event.alert_id for record in everyone] == ["other", "team", "mine", "old"]
        assert everyone[-1].state.state == "failed"
        assert everyone[-1].state.attempts == 1
        assert everyone[-1].state.last_error == "The webhook answered 500."
        assert everyone[0].state.state == "pending"

        mine = await outbox.listed(owners=["alice", "team:research"], ending_after=4300.0)
        assert [record.event.alert_id for record in mine] == ["team", "mine"]
        assert [r.event.alert_id for r in await outbox.listed(owners=["alice"])] == ["mine", "old"]
        assert [r.event.alert_id for r in await outbox.listed(limit=2)] == ["other", "team"]
        assert await outbox.listed(owners=[]) == []


async def _settle(outbox: AlertOutbox, now: float, *, give_up: frozenset[str] = frozenset()) -> None:
    """Claim everything due and deliver it (or give up those in ``give_up``)."""
    for claimed in await outbox.claim(now=now, lease=60.0, limit=100):
        if claimed.event.alert_id in give_up:
            assert await outbox.give_up(claimed, now, "The webhook answered 410.")
        else:
            assert await outbox.delivered(claimed, now)


def test_a_purge_deletes_settled_alerts_of_windows_ended_by_its_horizon_only(
    run: Callable[[Contract], None],
) -> None:
    """Delivered and given-up alerts of a window that ended by the horizon go; a pending alert of such a
    window, and a settled alert of a later window, stay."""

    async def contract(outbox: AlertOutbox) -> None:
        await outbox.enqueue(_event("delivered", threshold=50))
        await outbox.enqueue(_event("given-up", threshold=80))
        await outbox.enqueue(_event("later", window_start=7200, window_end=10800))
        await _settle(outbox, 7300.0, give_up=frozenset({"given-up"}))
        await outbox.enqueue(_event("pending", threshold=90))  # stored before the purge: kept, sent later
        assert await outbox.purge(7200.0, limit=100) == 2
        assert await outbox.state("delivered") is None
        assert await outbox.state("given-up") is None
        pending, later = await outbox.state("pending"), await outbox.state("later")
        assert pending is not None
        assert pending.state == "pending"
        assert later is not None
        assert later.state == "delivered"
        assert await outbox.purge(7200.0, limit=100) == 0

    run(contract)


def test_a_purged_alert_never_fires_again_in_its_window(run: Callable[[Contract], None]) -> None:
    """After its row is purged, the same threshold of the same window is refused (whatever its id), and
    so is any alert of a window that ended by the horizon, even a horizon a later purge lowered; an alert
    of a window still open is stored."""

    async def contract(outbox: AlertOutbox) -> None:
        assert await outbox.enqueue(_event("first"))
        await _settle(outbox, 7300.0)
        assert await outbox.purge(7200.0, limit=100) == 1
        assert not await outbox.enqueue(_event("again"))
        assert await outbox.state("again") is None
        assert not await outbox.enqueue(_event("other-threshold", threshold=90))
        assert await outbox.purge(3600.0, limit=100) == 0  # an older horizon does not lower the kept one
        assert not await outbox.enqueue(_event("again-later"))
        assert await outbox.claim(now=9000.0, lease=60.0, limit=100) == []
        assert await outbox.enqueue(_event("next-window", window_start=7200, window_end=10800))

    run(contract)


def test_a_purge_goes_in_batches_of_its_limit(run: Callable[[Contract], None]) -> None:
    """Each purge deletes at most ``limit`` alerts; the next takes the rest."""

    async def contract(outbox: AlertOutbox) -> None:
        for threshold in (10, 20, 30, 40, 50):
            await outbox.enqueue(_event(f"t{threshold}", threshold=threshold))
        await _settle(outbox, 7300.0)
        assert [await outbox.purge(7200.0, limit=2) for _ in range(4)] == [2, 2, 1, 0]

    run(contract)


def test_a_purge_racing_enqueues_of_its_alerts_lets_none_of_them_in_again(
    run: Callable[[Contract], None],
) -> None:
    """Enqueues of purged identities running at the same time as the purges (as another replica's would)
    are all refused: none of the forty thresholds is stored twice."""

    async def contract(outbox: AlertOutbox) -> None:
        for threshold in range(1, 41):
            await outbox.enqueue(_event(f"t{threshold}", threshold=threshold))
        await _settle(outbox, 7300.0)
        repeats = [outbox.enqueue(_event(f"r{threshold}", threshold=threshold)) for threshold in range(1, 41)]
        purges = [outbox.purge(7200.0, limit=5) for _ in range(10)]
        results = await asyncio.gather(*repeats, *purges)
        assert not any(results[:40])
        assert sum(results[40:]) == 40
        assert [await outbox.state(f"r{threshold}") for threshold in range(1, 41)] == [None] * 40

    run(contract)
