"""Calls to a shared storage (Redis) that may be down: bounded in time, counted, and paused after a failure.

Both failure-policy wrappers (``limits/resilient.py`` for the counters, ``capacity/resilient.py`` for the
slots) put their calls to Redis through one ``StorageBreaker``. After a failure the storage is left alone
for ``retry_interval``, so a dead Redis costs one timeout per interval, not one per request; then it is
tried again, and the gateway recovers by itself. The first failure and the recovery are logged once each.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.exceptions import RedisError

__all__ = ["STORAGE_ERRORS", "StorageBreaker"]

T = TypeVar("T")
STORAGE_ERRORS = (RedisError, OSError, TimeoutError)


class StorageBreaker:
    def __init__(
        self,
        *,
        what: str,
        while_down: str,
        back: str,
        timeout: float,
        retry_interval: float,
        primary_times_out: bool = False,
        logger: logging.Logger,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``what`` names the storage in log lines ("The limit storage"), ``while_down`` says what the
        gateway does meanwhile, ``back`` what a recovery restores. ``primary_times_out``: the storage ends
        every operation within ``timeout`` by itself, so no ``asyncio.timeout`` (about 11 µs) is needed."""
        self.timeout = timeout
        self.retry_interval = retry_interval
        self._what, self._while_down, self._back = what, while_down, back
        self._primary_times_out = primary_times_out
        self._logger = logger
        self._clock = clock
        self._retry_at = 0.0
        self.degraded = False
        self.failures = 0

    async def attempt(self, operation: Callable[[], Awaitable[T]]) -> tuple[bool, T | None]:
        """``(True, result)`` when the storage answered; ``(False, None)`` when it failed or is being left
        alone after a failure."""
        if self._clock() < self._retry_at:
            return False, None
        try:
            if self._primary_times_out:
                result = await operation()
            else:
                async with asyncio.timeout(self.timeout):
                    result = await operation()
        except STORAGE_ERRORS as exc:
            self._failed(exc)
            return False, None
        if self.degraded:
            self.degraded = False
            self._logger.warning("%s answers again; %s.", self._what, self._back)
        return True, result

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        self._retry_at = self._clock() + self.retry_interval
        if not self.degraded:
            self.degraded = True
            self._logger.error(
                "%s failed (%s: %s); %s until it answers again.",
                self._what,
                type(exc).__name__,
                exc or "timeout",
                self._while_down,
            )
