"""The failure policy around a shared limit storage: fail closed (503) or fail open to local counters.

Every storage failure is counted (``failures``), and so is every operation served by the local fallback
(``degraded_operations``); the metrics module exports both. After a failure the shared storage is left
alone for ``retry_interval`` so that a dead Redis costs one timeout per interval, not one per request;
then it is tried again, and the gateway recovers by itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal, TypeVar

from redis.exceptions import RedisError

from maas_gateway.errors import ServiceUnavailableError
from maas_gateway.limits.storage import AdmitResult, Check, InMemoryLimitStorage, LimitStorage

__all__ = ["ResilientStorage"]

logger = logging.getLogger("maas_gateway.limits")
T = TypeVar("T")
_STORAGE_ERRORS = (RedisError, OSError, TimeoutError)


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
        self.retry_interval = retry_interval
        self._primary_times_out = primary_times_out
        self.failures = 0
        self.degraded_operations = 0
        self._clock = clock
        self._retry_at = 0.0
        self._degraded = False

    @property
    def degraded(self) -> bool:
        return self._degraded

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

    async def ping(self) -> bool:
        if self.policy == "fail-open":
            return True
        try:
            async with asyncio.timeout(self.timeout):
                return await self.primary.ping()
        except _STORAGE_ERRORS:
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
        if self._clock() >= self._retry_at:
            try:
                if self._primary_times_out:
                    result = await primary()
                else:
                    async with asyncio.timeout(self.timeout):
                        result = await primary()
            except _STORAGE_ERRORS as exc:
                self._failed(exc)
            else:
                if self._degraded:
                    self._degraded = False
                    logger.warning("The limit storage answers again; shared limits are back in force.")
                return result
        if not may_fall_back:
            raise ServiceUnavailableError(
                "Rate limits cannot be checked because the limit storage is unreachable; try again shortly.",
                code="limits_unavailable",
            )
        self.degraded_operations += 1
        return await fallback()

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        self._retry_at = self._clock() + self.retry_interval
        if not self._degraded:
            self._degraded = True
            action = "counting in this process only" if self.policy == "fail-open" else "refusing requests"
            logger.error(
                "The limit storage failed (%s: %s); %s until it answers again.",
                type(exc).__name__,
                exc or "timeout",
                action,
            )
