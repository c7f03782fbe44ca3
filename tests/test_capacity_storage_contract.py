"""One contract for every ``CapacityStorage``: in process, standalone Redis and Redis Cluster behave the same.

Acquiring is all or nothing and never passes a slot set's limit, however many ask at once; leases expire
by themselves unless renewed, and a lost lease is not brought back; token budgets refuse once spent;
a registration in a better tier's waiting set refuses worse tiers until it lapses or is taken out.
Time is injected (``now``), so expiry is tested without waiting.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator

import pytest

from maas_gateway.capacity import (
    AcquireRequest,
    BudgetCharge,
    CapacityStorage,
    HeldLease,
    InMemoryCapacityStorage,
    SlotClaim,
    TokenBudget,
)
from maas_gateway.capacity.redis_storage import RedisCapacityStorage
from tests.support.redis_server import STORAGE_KINDS, storage_url_of

Contract = Callable[[CapacityStorage], Awaitable[None]]
NOW = 1_800_000_000.0
MODEL = SlotClaim("slots:model:m", 2, "capacity")
USER = SlotClaim("slots:user:u", 1, "quota")


@pytest.fixture(scope="module", params=STORAGE_KINDS)
def storage_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server per kind for the module; each test keeps to keys of its own (a fresh prefix)."""
    yield from storage_url_of(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture
def run(storage_url: str) -> Callable[[Contract], None]:
    """Runs a contract coroutine against a fresh storage of the parametrized kind."""

    def runner(contract: Contract) -> None:
        async def main() -> None:
            storage: CapacityStorage
            if storage_url:
                prefix = f"test:{uuid.uuid4().hex}:"
                storage = RedisCapacityStorage(storage_url, timeout=2.0, prefix=prefix)
            else:
                storage = InMemoryCapacityStorage()
            try:
                await contract(storage)
            finally:
                await storage.aclose()

        asyncio.run(main())

    return runner


def _ask(
    lease: str,
    *slots: SlotClaim,
    now: float = NOW,
    ttl: float = 30.0,
    budget: TokenBudget | None = None,
    outranked_by: tuple[str, ...] = (),
    waiting: str | None = None,
    registered_until: float = 0.0,
) -> AcquireRequest:
    return AcquireRequest(lease, slots, now + ttl, budget, outranked_by, waiting, registered_until)


def test_slots_are_taken_up_to_the_limit_and_come_back_when_released(run: Callable[[Contract], None]) -> None:
    """Two slots: two leases pass, the third is refused for capacity; a release frees one, twice is once."""

    async def contract(storage: CapacityStorage) -> None:
        first = await storage.acquire(_ask("a", MODEL), NOW)
        assert (first.acquired, first.refusal, first.in_use) == (True, None, (1,))
        assert (await storage.acquire(_ask("b", MODEL), NOW)).in_use == (2,)
        refused = await storage.acquire(_ask("c", MODEL), NOW)
        assert (refused.acquired, refused.refusal, refused.in_use) == (False, "capacity", (2,))
        await storage.release("a", [MODEL.key], None, NOW)
        await storage.release("a", [MODEL.key], None, NOW)
        await storage.release("never-held", [MODEL.key], None, NOW)
        assert (await storage.acquire(_ask("c", MODEL), NOW)).in_use == (2,)
        assert not (await storage.acquire(_ask("d", MODEL), NOW)).acquired

    run(contract)


def test_acquiring_is_all_or_nothing_and_names_the_users_own_allowance(
    run: Callable[[Contract], None],
) -> None:
    """The user's set is full: the refusal is "quota" and the model's set is not touched."""

    async def contract(storage: CapacityStorage) -> None:
        assert (await storage.acquire(_ask("a", USER, MODEL), NOW)).in_use == (1, 1)
        refused = await storage.acquire(_ask("b", USER, MODEL), NOW)
        assert (refused.acquired, refused.refusal, refused.in_use) == (False, "quota", (1, 1))
        other_user = SlotClaim("slots:user:v", 1, "quota")
        assert (await storage.acquire(_ask("c", other_user, MODEL), NOW)).in_use == (1, 2)

    run(contract)


def test_a_lease_nobody_renews_expires_and_its_slot_comes_back(run: Callable[[Contract], None]) -> None:
    """A holder that died: its lease counts until its expiry and not after (purged by the next acquire)."""

    async def contract(storage: CapacityStorage) -> None:
        assert (await storage.acquire(_ask("dead", MODEL, ttl=5.0), NOW)).acquired
        assert (await storage.acquire(_ask("alive", MODEL, ttl=60.0), NOW)).acquired
        assert not (await storage.acquire(_ask("x", MODEL, now=NOW + 4.9), NOW + 4.9)).acquired
        late = await storage.acquire(_ask("x", MODEL, now=NOW + 5.1), NOW + 5.1)
        assert (late.acquired, late.in_use) == (True, (2,))

    run(contract)


def test_renewal_keeps_a_lease_and_never_brings_back_a_lost_one(run: Callable[[Contract], None]) -> None:
    """A renewed lease outlives its first expiry; an expired or released lease is reported lost and stays
    gone, in every set it was in."""

    async def contract(storage: CapacityStorage) -> None:
        await storage.acquire(_ask("kept", USER, MODEL, ttl=5.0), NOW)
        await storage.acquire(_ask("expired", MODEL, ttl=5.0), NOW)
        lost = await storage.renew([HeldLease("kept", (USER.key, MODEL.key), NOW + 30.0)], NOW + 3.0)
        assert lost == ()
        lost = await storage.renew(
            [
                HeldLease("kept", (USER.key, MODEL.key), NOW + 36.0),
                HeldLease("expired", (MODEL.key,), NOW + 36.0),
            ],
            NOW + 6.0,
        )
        assert lost == ("expired",)
        refused = await storage.acquire(_ask("y", USER, MODEL, now=NOW + 20.0), NOW + 20.0)
        assert (refused.refusal, refused.in_use) == ("quota", (1, 1)), "the renewed lease still holds"
        await storage.release("kept", [USER.key, MODEL.key], None, NOW + 20.0)
        assert await storage.renew([HeldLease("kept", (USER.key,), NOW + 50.0)], NOW + 20.0) == ("kept",)
        assert (await storage.acquire(_ask("z", USER, MODEL, now=NOW + 21.0), NOW + 21.0)).in_use == (1, 1)

    run(contract)


def test_a_spent_token_budget_refuses_until_its_minute_counter_is_replaced(
    run: Callable[[Contract], None],
) -> None:
    """Tokens charged on release count against the budget: below the limit requests pass, at it they are
    refused ("budget"); the next minute's counter is another key and starts at nothing."""

    async def contract(storage: CapacityStorage) -> None:
        budget = TokenBudget("tokens:m:100", 100)
        assert (await storage.acquire(_ask("a", budget=budget), NOW)).acquired
        await storage.release("a", [], BudgetCharge(budget.key, 99, 65.0), NOW)
        assert (await storage.acquire(_ask("b", budget=budget), NOW)).acquired
        await storage.release("b", [], BudgetCharge(budget.key, 1, 65.0), NOW)
        refused = await storage.acquire(_ask("c", MODEL, budget=budget), NOW)
        assert (refused.acquired, refused.refusal, refused.in_use) == (False, "budget", (0,))
        assert (
            await storage.acquire(_ask("c", MODEL, budget=TokenBudget("tokens:m:101", 100)), NOW)
        ).acquired

    run(contract)


def test_a_better_tier_waiting_anywhere_keeps_a_free_slot_from_worse_tiers(
    run: Callable[[Contract], None],
) -> None:
    """A request refused for capacity registers in its tier's waiting set; while registered, worse tiers
    are refused ("outranked") even with a slot free, and its own tier is not; the registration goes when
    the request acquires, and lapses by itself."""

    async def contract(storage: CapacityStorage) -> None:
        await storage.acquire(_ask("a", MODEL), NOW)
        await storage.acquire(_ask("b", MODEL), NOW)
        better = _ask("gold", MODEL, waiting="waiting:m:0", registered_until=NOW + 1.0)
        assert (await storage.acquire(better, NOW)).refusal == "capacity"
        await storage.release("a", [MODEL.key], None, NOW)
        worse = _ask(
            "free", MODEL, outranked_by=("waiting:m:0",), waiting="waiting:m:1", registered_until=NOW + 1
        )
        assert (await storage.acquire(worse, NOW)).refusal == "outranked"
        assert (await storage.acquire(better, NOW)).acquired, "its own tier is not outranked by itself"
        await storage.release("b", [MODEL.key], None, NOW)
        assert (await storage.acquire(_ask("free", MODEL, outranked_by=("waiting:m:0",)), NOW)).acquired

        await storage.release("gold", [MODEL.key], None, NOW)
        await storage.release("free", [MODEL.key], None, NOW)
        await storage.acquire(_ask("c", MODEL), NOW)
        await storage.acquire(_ask("d", MODEL), NOW)
        gold2 = _ask("gold2", MODEL, waiting="waiting:m:0", registered_until=NOW + 1.0)
        assert (await storage.acquire(gold2, NOW)).refusal == "capacity"
        await storage.release("c", [MODEL.key], None, NOW)
        blocked = _ask("free2", MODEL, outranked_by=("waiting:m:0",), now=NOW + 0.9)
        assert (await storage.acquire(blocked, NOW + 0.9)).refusal == "outranked"
        lapsed = _ask("free2", MODEL, outranked_by=("waiting:m:0",), now=NOW + 1.1)
        assert (await storage.acquire(lapsed, NOW + 1.1)).acquired, "a registration lapses by itself"

    run(contract)


def test_withdrawn_and_own_quota_refusals_leave_no_registration(run: Callable[[Contract], None]) -> None:
    """A request that stops waiting withdraws its registration; one refused on its own allowance is not
    waiting for the model, so it is not registered (and an earlier registration of it goes)."""

    async def contract(storage: CapacityStorage) -> None:
        full = SlotClaim("slots:model:full", 1, "capacity")
        await storage.acquire(_ask("holder", USER, full), NOW)
        line = "waiting:m:0"
        assert (
            await storage.acquire(_ask("w", full, waiting=line, registered_until=NOW + 10), NOW)
        ).refusal == "capacity"
        await storage.withdraw("waiting:m:0", "w")
        assert (await storage.acquire(_ask("x", MODEL, outranked_by=("waiting:m:0",)), NOW)).acquired

        waits = _ask("w2", full, waiting=line, registered_until=NOW + 10)
        assert (await storage.acquire(waits, NOW)).refusal == "capacity"
        quota = _ask("w2", USER, full, waiting=line, registered_until=NOW + 10)
        assert (await storage.acquire(quota, NOW)).refusal == "quota"
        assert (await storage.acquire(_ask("y", MODEL, outranked_by=("waiting:m:0",)), NOW)).acquired

    run(contract)


def test_a_full_tier_share_refuses_that_tier_only_and_registers_nothing(
    run: Callable[[Contract], None],
) -> None:
    """A tier's share of the model is in use: its next request is refused ("share") with model slots
    still free, is not registered as waiting for the model, and another tier's request passes."""

    async def contract(storage: CapacityStorage) -> None:
        free_share = SlotClaim("slots:tier:m\x1ffree", 1, "share")
        assert (await storage.acquire(_ask("f1", free_share, MODEL), NOW)).acquired
        waits = _ask("f2", free_share, MODEL, waiting="waiting:m:1", registered_until=NOW + 10)
        refused = await storage.acquire(waits, NOW)
        assert (refused.acquired, refused.refusal, refused.in_use) == (False, "share", (1, 1))
        worse = _ask(
            "x", SlotClaim("slots:tier:m\x1fother", 1, "share"), MODEL, outranked_by=("waiting:m:1",)
        )
        assert (await storage.acquire(worse, NOW)).acquired

    run(contract)


def test_concurrent_acquisitions_never_pass_the_limit(run: Callable[[Contract], None]) -> None:
    """A hundred simultaneous acquisitions of a set of ten slots: exactly ten are granted."""

    async def contract(storage: CapacityStorage) -> None:
        ten = SlotClaim("slots:model:ten", 10, "capacity")
        results = await asyncio.gather(*(storage.acquire(_ask(f"l{i}", ten), NOW) for i in range(100)))
        assert sum(result.acquired for result in results) == 10
        assert await storage.ping()

    run(contract)
