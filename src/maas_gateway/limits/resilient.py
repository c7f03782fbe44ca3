"""The failure policy around a shared limit storage: fail closed (503) or fail open to local counters.

Every storage failure is counted (``failures``), and so is every operation served by the local fallback
(``degraded_operations``); the metrics module exports both. Calls to the shared storage go through a
``StorageBreaker`` (limits/breaker.py): bounded in time, and paused for ``retry_interval`` after a failure.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal, TypeVar

from maas_gateway.errors import ServiceUnavailableError
from maas_gateway.limits.breaker import STORAGE_ERRORS, StorageBreaker
from maas_gateway.limits.storage import AdmitResult, Check, InMemoryLimitStorage, LimitStorage

__all__ = ["ResilientStorage"]

logger = logging.getLogger("maas_gateway.limits")
T = TypeVar("T")


class ResilientStorage:
    def __init__(
        self,
        primary: LimitStorage,
        *,
        policy: Literal["fail-closed", "fail-open"],
        timeout: float,
        retry_interval: float,
        primary_times_out: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``primary_times_out``: the primary ends every operation within ``timeout`` by itself, so no
        ``asyncio.timeout`` (about 11 µs each) is needed around it."""
        self.primary = primary
        self.fallback = InMemoryLimitStorage()
        self.policy = policy
        self.timeout = timeout
        self.degraded_operations = 0
        self._breaker = StorageBreaker(
            what="The limit storage",
            while_down="counting in this process only" if policy == "fail-open" else "refusing requests",
            back="shared limits are back in force",
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

    async def admit(self, checks: Sequence[Check], now: float) -> AdmitResult:
        return await self._run(
            lambda: self.primary.admit(checks, now),
            lambda: self.fallback.admit(checks, now),
            may_fall_back=self.policy == "fail-open",
        )

    async def add(
        self, keys: Sequence[str], amounts: Sequence[int], ttls: Sequence[float], now: float
    ) -> tuple[int, ...]:
        # A charge for an answer already given is never refused: it lands locally at worst.
        return await self._run(
            lambda: self.primary.add(keys, amounts, ttls, now),
            lambda: self.fallback.add(keys, amounts, ttls, now),
            may_fall_back=True,
        )

    async def peek(self, keys: Sequence[str], now: float) -> tuple[int, ...]:
        # Reading is never refused: while the storage is down, the local counters are what is known.
        return await self._run(
            lambda: self.primary.peek(keys, now),
            lambda: self.fallback.peek(keys, now),
            may_fall_back=True,
        )

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

    async def _run(
        self,
        primary: Callable[[], Awaitable[T]],
        fallback: Callable[[], Awaitable[T]],
        *,
        may_fall_back: bool,
    ) -> T:
        answered, result = await self._breaker.attempt(primary)
        if answered:
            return result  # type: ignore[return-value]  # answered: the primary's own T, None included
        if not may_fall_back:
            raise ServiceUnavailableError(
                "Rate limits cannot be checked because the limit storage is unreachable; try again shortly.",
                code="limits_unavailable",
            )
        self.degraded_operations += 1
        return await fallback()
