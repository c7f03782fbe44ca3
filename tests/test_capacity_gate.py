"""The capacity gate in process, over the in-memory storage: priority by tier, turns between users,
deadlines answered 503 or 429 with Retry-After, full lines, leases that outlive a dead holder by one lease
time only, token budgets, and two gates sharing a storage as two replicas share Redis.

Nothing here asserts a duration: tests wait for states (who is in line) and check order and outcomes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from maas_gateway.capacity import (
    CapacityGate,
    CapacityRules,
    Demand,
    InMemoryCapacityStorage,
    ModelCaps,
    QueueSettings,
    Slot,
)
from maas_gateway.capacity.events import WaitOutcome
from maas_gateway.errors import CapacityExhaustedError, ConcurrencyLimitError
from tests.support.clock import FakeClock
from tests.support.polling import wait_until_async

TIERS = ("enterprise", "premium", "free")


def _rules(
    *,
    max_in_flight: int | None = 1,
    tokens_per_minute: int | None = None,
    max_queue: int = 100,
    timeout: float = 30.0,
    tier_concurrency: dict[str, int] | None = None,
    lease_ttl: float = 30.0,
) -> CapacityRules:
    return CapacityRules(
        models={"m": ModelCaps(max_in_flight, tokens_per_minute)},
        tiers=TIERS,
        tier_order=TIERS,
        tier_concurrency=tier_concurrency,
        queue=QueueSettings(max_queue, timeout),
        lease_ttl=lease_ttl,
        poll_interval=0.02,
    )


def _demand(rules: CapacityRules, user: str, tier: str = "free") -> Demand:
    demand = rules.demand(user, tier, "m")
    assert demand is not None
    return demand


def _run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 30))


class _Recorder:
    """``CapacityEvents`` that keeps what it is told."""

    def __init__(self) -> None:
        self.depth: dict[tuple[str, str], int] = {}
        self.waits: list[tuple[str, WaitOutcome]] = []
        self.in_flight = 0

    def queue_changed(self, model: str, tier: str, change: int) -> None:
        self.depth[(model, tier)] = self.depth.get((model, tier), 0) + change

    def waited(self, model: str, tier: str, seconds: float, outcome: WaitOutcome) -> None:
        self.waits.append((tier, outcome))

    def in_flight_changed(self, model: str, change: int) -> None:
        self.in_flight += change


async def _served_in_order(gate: CapacityGate, demands: list[tuple[str, Demand]], holder: Slot) -> list[str]:
    """Queue every demand behind ``holder`` (in list order), release it, and return the serving order."""
    order: list[str] = []

    async def one(name: str, demand: Demand) -> None:
        slot = await gate.acquire(demand)
        order.append(name)
        await slot.release()

    tasks: list[asyncio.Task[None]] = []
    for name, demand in demands:
        tasks.append(asyncio.create_task(one(name, demand)))
        await wait_until_async(lambda: gate.waiting("m") == len(tasks), f"{name} in line")
    await holder.release()
    await asyncio.gather(*tasks)
    return order


def test_an_enterprise_request_is_served_before_free_requests_that_came_first() -> None:
    """Cap 1, held: five free requests wait, then one enterprise request; each release goes to the best
    tier first, so the enterprise request is served first and the free ones after it, in order."""

    async def scenario() -> None:
        rules = _rules()
        gate = CapacityGate(InMemoryCapacityStorage())
        holder = await gate.acquire(_demand(rules, "holder"))
        demands = [(f"free{n}", _demand(rules, "free-user")) for n in range(5)]
        demands.append(("enterprise", _demand(rules, "boss", "enterprise")))
        order = await _served_in_order(gate, demands, holder)
        assert order == ["enterprise", "free0", "free1", "free2", "free3", "free4"]

    _run(scenario)


def test_slots_freed_together_all_go_to_the_better_tier_before_any_worse_one() -> None:
    """Three slots freed at once (answers of one length end together) while three free requests and then
    three enterprise requests of one user wait: the three enterprise requests get all three."""

    async def scenario() -> None:
        rules = _rules(max_in_flight=3)
        gate = CapacityGate(InMemoryCapacityStorage())
        holders = [await gate.acquire(_demand(rules, f"holder{n}")) for n in range(3)]
        order: list[str] = []

        async def one(name: str, demand: Demand) -> Slot:
            slot = await gate.acquire(demand)
            order.append(name)
            return slot

        tasks = [asyncio.create_task(one(f"free{n}", _demand(rules, f"f{n}"))) for n in range(3)]
        tasks += [
            asyncio.create_task(one(f"boss{n}", _demand(rules, "boss", "enterprise"))) for n in range(3)
        ]
        await wait_until_async(lambda: gate.waiting("m") == 6, "six in line")
        for holder in holders:
            await holder.release()
        await wait_until_async(lambda: len(order) == 3, "three served")
        assert order == ["boss0", "boss1", "boss2"]
        for slot in await asyncio.gather(*tasks[3:]):
            await slot.release()
        for slot in await asyncio.gather(*tasks[:3]):
            await slot.release()

    _run(scenario)


def test_one_users_fifty_waiting_requests_do_not_starve_anothers_one() -> None:
    """User A queues 50 requests, then user B one: B is served second, right after A's first."""

    async def scenario() -> None:
        rules = _rules()
        gate = CapacityGate(InMemoryCapacityStorage())
        holder = await gate.acquire(_demand(rules, "holder"))
        demands = [(f"a{n}", _demand(rules, "a")) for n in range(50)] + [("b", _demand(rules, "b"))]
        order = await _served_in_order(gate, demands, holder)
        assert order.index("b") == 1
        assert sorted(order) == sorted(name for name, _ in demands)

    _run(scenario)


def test_a_request_that_waits_past_its_deadline_gets_503_with_retry_after() -> None:
    """The model's one slot stays held: the waiting request is answered 503 capacity_exhausted with a
    Retry-After, leaves the line, and the wait is reported as a timeout."""

    async def scenario() -> None:
        events = _Recorder()
        rules = _rules(timeout=0.05)
        gate = CapacityGate(InMemoryCapacityStorage(), events=events)
        holder = await gate.acquire(_demand(rules, "holder"))
        with pytest.raises(CapacityExhaustedError) as refused:
            await gate.acquire(_demand(rules, "late"))
        error = refused.value
        assert (error.status_code, error.code) == (503, "capacity_exhausted")
        assert int(error.headers()["retry-after"]) >= 1
        assert "The model 'm' is at capacity" in error.message
        assert gate.waiting("m") == 0
        assert events.waits == [("free", "timeout")]
        assert events.depth == {("m", "free"): 0}
        await holder.release()

    _run(scenario)


def test_a_user_at_their_own_concurrency_waits_for_their_own_request_then_gets_429() -> None:
    """Free users may have one request at a time: the second waits while others pass it, is served
    when the first ends, and a third that outlasts its deadline is answered 429 with Retry-After."""

    async def scenario() -> None:
        rules = _rules(max_in_flight=10, tier_concurrency={"free": 1}, timeout=0.2)
        gate = CapacityGate(InMemoryCapacityStorage())
        first = await gate.acquire(_demand(rules, "alice"))
        second = asyncio.create_task(gate.acquire(_demand(rules, "alice")))
        await wait_until_async(lambda: gate.waiting("m") == 1, "alice's second request in line")
        other = await gate.acquire(_demand(rules, "bob"))  # alice waiting does not hold bob up
        await first.release()
        slot = await second
        assert slot.waited > 0
        with pytest.raises(ConcurrencyLimitError) as refused:
            await gate.acquire(_demand(rules, "alice"))
        error = refused.value
        assert (error.status_code, error.code) == (429, "concurrency_limit_exceeded")
        assert "retry-after" in error.headers()
        assert "User 'alice' already has 1 requests in progress" in error.message
        await slot.release()
        await other.release()

    _run(scenario)


def test_a_full_line_refuses_at_once_or_sheds_a_worse_claim() -> None:
    """Two places in line: a third free request of a user already waiting is refused at once (503);
    an enterprise request takes the place of the newest free one, which is answered 503 at once."""

    async def scenario() -> None:
        events = _Recorder()
        rules = _rules(max_queue=2)
        gate = CapacityGate(InMemoryCapacityStorage(), events=events)
        holder = await gate.acquire(_demand(rules, "holder"))
        waiting = [asyncio.create_task(gate.acquire(_demand(rules, "a"))) for _ in range(2)]
        await wait_until_async(lambda: gate.waiting("m") == 2, "two in line")
        with pytest.raises(CapacityExhaustedError) as full:
            await gate.acquire(_demand(rules, "a"))
        assert "line of waiting requests is full" in full.value.message
        boss = asyncio.create_task(gate.acquire(_demand(rules, "boss", "enterprise")))
        with pytest.raises(CapacityExhaustedError) as shed:
            await waiting[1]
        assert "went to a request of a higher tier" in shed.value.message
        await holder.release()
        await (await boss).release()
        await (await waiting[0]).release()
        assert [outcome for _, outcome in events.waits] == ["rejected", "shed", "served", "served"]

    _run(scenario)


def test_a_request_cancelled_while_waiting_leaves_the_line_and_holds_nothing() -> None:
    """A client that goes away while waiting: out of line, and the next release serves the next one."""

    async def scenario() -> None:
        rules = _rules()
        gate = CapacityGate(InMemoryCapacityStorage())
        holder = await gate.acquire(_demand(rules, "holder"))
        gone = asyncio.create_task(gate.acquire(_demand(rules, "gone")))
        stays = asyncio.create_task(gate.acquire(_demand(rules, "stays")))
        await wait_until_async(lambda: gate.waiting("m") == 2, "two in line")
        gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        assert gate.waiting("m") == 1
        await holder.release()
        await (await stays).release()
        assert gate.held == 0

    _run(scenario)


def test_a_dead_holders_slot_comes_back_after_one_lease_time_and_a_live_one_keeps_it() -> None:
    """Two gates on one storage, as two replicas on one Redis, with a hand-set clock: a lease whose
    holder stops renewing is free after its lease time; one that is renewed every third stays held."""

    async def scenario() -> None:
        clock, storage = FakeClock(1_800_000_000.0), InMemoryCapacityStorage()
        rules = _rules(max_queue=0, lease_ttl=30.0)
        dead, alive, other = (CapacityGate(storage, clock=clock) for _ in range(3))
        await dead.acquire(_demand(rules, "crashed"))
        with pytest.raises(CapacityExhaustedError):
            await other.acquire(_demand(rules, "x"))
        clock.advance(30.5)
        slot = await other.acquire(_demand(rules, "x"))  # the dead holder's slot came back
        await slot.release()

        kept = await alive.acquire(_demand(rules, "alive"))
        for _ in range(6):  # 60 seconds, renewed after each third of the lease time
            clock.advance(10.0)
            assert await alive.leases.renew_due() == 1
        with pytest.raises(CapacityExhaustedError):
            await other.acquire(_demand(rules, "x"))
        await kept.release()
        assert alive.leases.lost == 0

    _run(scenario)


def test_the_models_tokens_per_minute_are_counted_on_release_and_refuse_until_the_minute_ends() -> None:
    """A budget of 100 tokens a minute: a request that used 100 spends it; the next in the same minute is
    answered 503 with Retry-After until the minute ends; in the next minute requests pass again."""

    async def scenario() -> None:
        clock = FakeClock(1_800_000_020.0)  # 20 seconds into a minute
        rules = _rules(max_in_flight=None, tokens_per_minute=100, max_queue=0)
        gate = CapacityGate(InMemoryCapacityStorage(), clock=clock)
        await (await gate.acquire(_demand(rules, "a"))).release(tokens=100)
        with pytest.raises(CapacityExhaustedError) as spent:
            await gate.acquire(_demand(rules, "b"))
        assert spent.value.headers()["retry-after"] == "40"
        assert "used its 100 tokens for this minute" in spent.value.message
        clock.advance(40.0)
        await (await gate.acquire(_demand(rules, "b"))).release()

    _run(scenario)


def test_a_better_tier_waiting_on_another_gate_gets_the_slot_released_on_this_one() -> None:
    """Two gates sharing a storage: a free request waits on gate A, an enterprise request on gate B; the
    slot released on A goes to B's enterprise request (it registered), not to A's own free request."""

    async def scenario() -> None:
        storage = InMemoryCapacityStorage()
        rules = _rules()
        gate_a, gate_b = CapacityGate(storage), CapacityGate(storage)
        holder = await gate_a.acquire(_demand(rules, "holder"))
        order: list[str] = []

        async def one(gate: CapacityGate, name: str, tier: str) -> None:
            slot = await gate.acquire(_demand(rules, name, tier))
            order.append(name)
            await slot.release()

        free = asyncio.create_task(one(gate_a, "free", "free"))
        await wait_until_async(lambda: gate_a.waiting("m") == 1, "the free request in line on A")
        boss = asyncio.create_task(one(gate_b, "boss", "enterprise"))
        await wait_until_async(lambda: gate_b.waiting("m") == 1, "the enterprise request in line on B")
        await holder.release()
        await asyncio.gather(free, boss)
        assert order == ["boss", "free"]

    _run(scenario)


def test_a_tiers_share_leaves_slots_to_other_tiers_and_does_not_hold_up_the_line() -> None:
    """Five slots, of which premium and free may each hold two: with both shares in use an enterprise
    request still passes at once; a premium request waiting on its full share does not keep the free
    request behind it in line from the slot that comes free in the free share."""

    async def scenario() -> None:
        rules = CapacityRules(
            models={"m": ModelCaps(max_in_flight=5)},
            tiers=TIERS,
            tier_order=TIERS,
            tier_shares={"premium": 0.5, "free": 0.5},
            queue=QueueSettings(100, 30.0),
            lease_ttl=30.0,
            poll_interval=0.02,
        )
        gate = CapacityGate(InMemoryCapacityStorage())
        premium = [await gate.acquire(_demand(rules, f"p{n}", "premium")) for n in range(2)]
        free = [await gate.acquire(_demand(rules, f"f{n}")) for n in range(2)]
        boss = await gate.acquire(_demand(rules, "boss", "enterprise"))
        premium_waits = asyncio.create_task(gate.acquire(_demand(rules, "p2", "premium")))
        free_waits = asyncio.create_task(gate.acquire(_demand(rules, "f2")))
        await wait_until_async(lambda: gate.waiting("m") == 2, "a premium and a free request in line")
        await boss.release()  # a slot of the model, but in no share that has room: nobody moves
        await free[0].release()
        await (await free_waits).release()
        assert not premium_waits.done()
        await premium[0].release()
        await (await premium_waits).release()
        for slot in (premium[1], free[1]):
            await slot.release()
        assert gate.held == 0

    _run(scenario)


def test_requests_nothing_caps_skip_the_gate() -> None:
    """A model without caps, and a user without a concurrency limit: no demand at all."""
    rules = _rules(tier_concurrency={"free": 2})
    assert rules.demand("u", "enterprise", "other-model") is None
    limited: Any = rules.demand("u", "free", "other-model")
    assert (limited.model_limit, limited.user_limit, limited.rank) == (None, 2, 2)
    assert rules.active
