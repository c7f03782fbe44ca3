"""The failure policy around the shared capacity storage, in process with an injected clock: fail-closed
refuses (503 capacity_unavailable), fail-open counts slots locally and gives each lease back where it was
granted, releases never fail a request, and a dead storage is tried once per retry interval."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Literal

import pytest

from maas_gateway.capacity import (
    AcquireRequest,
    AcquireResult,
    BudgetCharge,
    HeldLease,
    InMemoryCapacityStorage,
    SlotClaim,
)
from maas_gateway.capacity.resilient import ResilientCapacityStorage
from maas_gateway.errors import ServiceUnavailableError
from tests.support.clock import FakeClock

NOW = 1_800_000_000.0
ONE = SlotClaim("slots:model:m", 1, "capacity")


class _FlakyStorage(InMemoryCapacityStorage):
    """The in-process storage standing in for Redis: it can be made unreachable, and counts the tries."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.tries = 0

    def _try(self) -> None:
        self.tries += 1
        if self.down:
            raise ConnectionRefusedError("the capacity storage is down")

    async def acquire(self, request: AcquireRequest, now: float) -> AcquireResult:
        self._try()
        return await super().acquire(request, now)

    async def release(self, lease: str, keys: Sequence[str], charge: BudgetCharge | None, now: float) -> None:
        self._try()
        await super().release(lease, keys, charge, now)

    async def renew(self, leases: Sequence[HeldLease], now: float) -> tuple[str, ...]:
        self._try()
        return await super().renew(leases, now)


def _storage(
    policy: Literal["fail-closed", "fail-open"],
) -> tuple[ResilientCapacityStorage, _FlakyStorage, FakeClock]:
    primary, clock = _FlakyStorage(), FakeClock()
    storage = ResilientCapacityStorage(primary, policy=policy, timeout=1.0, retry_interval=2.0, clock=clock)
    return storage, primary, clock


def _ask(lease: str) -> AcquireRequest:
    return AcquireRequest(lease, (ONE,), NOW + 30.0)


def test_fail_closed_refuses_tries_once_per_interval_and_recovers() -> None:
    """Down: every acquisition is a 503 `capacity_unavailable`, the storage is tried again only after the
    retry interval, and the first try that works ends the outage."""
    storage, primary, clock = _storage("fail-closed")

    async def scenario() -> None:
        primary.down = True
        for _ in range(5):
            with pytest.raises(ServiceUnavailableError) as refused:
                await storage.acquire(_ask("a"), NOW)
            assert refused.value.code == "capacity_unavailable"
        assert (primary.tries, storage.failures, storage.degraded) == (1, 1, True)
        primary.down = False
        clock.advance(2.0)
        assert (await storage.acquire(_ask("a"), NOW)).acquired
        assert (primary.tries, storage.degraded) == (2, False)

    asyncio.run(scenario())


def test_fail_open_counts_locally_and_gives_each_lease_back_where_it_was_granted() -> None:
    """Down: slots are counted in this process (the cap holds per process); a lease granted locally is
    released and renewed locally even after the storage is back; releasing a shared lease while the
    storage is down does not fail."""
    storage, primary, clock = _storage("fail-open")

    async def scenario() -> None:
        assert (await storage.acquire(_ask("shared"), NOW)).acquired
        primary.down = True
        await storage.release("shared", [ONE.key], None, NOW)  # lost: the lease will expire by itself
        assert (await storage.acquire(_ask("local"), NOW)).acquired
        assert not (await storage.acquire(_ask("refused"), NOW)).acquired
        assert storage.degraded_operations == 2
        primary.down = False
        clock.advance(2.0)
        assert await storage.renew([HeldLease("local", (ONE.key,), NOW + 60)], NOW) == ()
        await storage.release("local", [ONE.key], None, NOW)
        assert (await storage.fallback.acquire(_ask("free-again"), NOW)).acquired
        assert not (await storage.acquire(_ask("still-held"), NOW)).acquired, "the shared lease outlives"

    asyncio.run(scenario())
