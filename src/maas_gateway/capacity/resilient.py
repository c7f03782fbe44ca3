"""The failure policy around the shared capacity storage, as for the limit counters (limits/resilient.py).

``fail-closed``: while Redis cannot be reached, a request that needs a slot is refused with 503
``capacity_unavailable``. ``fail-open``: slots are counted in this process instead, so each replica
enforces the caps on its own (a fleet of R replicas may then hold up to R times a cap). Releases, renewals
and withdrawals never fail a request: a lease that could not be given back expires by itself. A lease
goes back to the storage that granted it, which this wrapper remembers. Calls to Redis go through a
``StorageBreaker`` (limits/breaker.py): bounded in time, and paused for ``retry_interval`` after a failure.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal, TypeVar

from maas_gateway.capacity.base import (
    AcquireRequest,
    AcquireResult,
    BudgetCharge,
    CapacityStorage,
    HeldLease,
)
from maas_gateway.capacity.memory import InMemoryCapacityStorage
from maas_gateway.errors import ServiceUnavailableError
from maas_gateway.limits.breaker import STORAGE_ERRORS, StorageBreaker

__all__ = ["ResilientCapacityStorage"]

logger = logging.getLogger("maas_gateway.capacity")
T = TypeVar("T")


class ResilientCapacityStorage:
    def __init__(
        self,
        primary: CapacityStorage,
        *,
        policy: Literal["fail-closed", "fail-open"],
        timeout: float,
        retry_interval: float,
        primary_times_out: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``primary_times_out``: the primary ends every operation within ``timeout`` by itself."""
        self.primary = primary
        self.fallback = InMemoryCapacityStorage()
        self.policy = policy
        self.timeout = timeout
        self._local: set[str] = set()  # leases granted by the fallback, to be released there
        self.degraded_operations = 0
        self._breaker = StorageBreaker(
            what="The capacity storage",
            while_down="counting slots in this process only" if policy == "fail-open" else "refusing",
            back="shared caps are back in force",
            timeout=timeout,
            retry_interval=retry_interval,
            primary_times_out=primary_times_out,
            logger=logger,
            clock=clock,
        )

    @property
    def degraded(self) -> bool:
        return self._breaker.degraded

    @property
    def failures(self) -> int:
        return self._breaker.failures

    async def acquire(self, request: AcquireRequest, now: float) -> AcquireResult:
        result = await self._primary(lambda: self.primary.acquire(request, now))
        if result is not None:
            return result
        if self.policy == "fail-closed":
            raise ServiceUnavailableError(
                "Model capacity cannot be checked because the limit storage is unreachable; "
                "try again shortly.",
                code="capacity_unavailable",
            )
        self.degraded_operations += 1
        result = await self.fallback.acquire(request, now)
        if result.acquired:
            self._local.add(request.lease)
        return result

    async def release(self, lease: str, keys: Sequence[str], charge: BudgetCharge | None, now: float) -> None:
        if lease in self._local:
            self._local.discard(lease)
            await self.fallback.release(lease, keys, charge, now)
            return
        await self._primary(lambda: self.primary.release(lease, keys, charge, now))

    async def renew(self, leases: Sequence[HeldLease], now: float) -> tuple[str, ...]:
        local = [held for held in leases if held.lease in self._local]
        shared = [held for held in leases if held.lease not in self._local]
        lost = list(await self.fallback.renew(local, now)) if local else []
        if shared:
            # Unreachable, a shared lease is not known to be lost: it will expire if Redis stays away.
            lost += await self._primary(lambda: self.primary.renew(shared, now)) or ()
        self._local.difference_update(lost)
        return tuple(lost)

    async def withdraw(self, waiting: str, lease: str) -> None:
        await self.fallback.withdraw(waiting, lease)
        await self._primary(lambda: self.primary.withdraw(waiting, lease))

    async def ping(self) -> bool:
        if self.policy == "fail-open":
            return True
        try:
            async with asyncio.timeout(self.timeout):
                return await self.primary.ping()
        except STORAGE_ERRORS:
            return False

    async def aclose(self) -> None:
        try:
            await self.primary.aclose()
        finally:
            await self.fallback.aclose()

    async def _primary(self, operation: Callable[[], Awaitable[T]]) -> T | None:
        """The operation's result from Redis, or ``None`` when Redis failed or is being left alone."""
        _answered, result = await self._breaker.attempt(operation)
        return result
