"""The failure policy around a shared limit storage, in process with an injected clock: fail-closed
refuses, fail-open counts locally, a dead storage is tried once per retry interval, and both recover by
themselves. The same policies against a real redis-server: tests/test_limits_redis.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Literal

import pytest

from maas_gateway.errors import ServiceUnavailableError
from maas_gateway.limits.resilient import ResilientStorage
from maas_gateway.limits.storage import AdmitResult, Check, InMemoryLimitStorage
from tests.support.clock import FakeClock


class _FlakyStorage(InMemoryLimitStorage):
    """The in-process storage standing in for Redis: it can be made unreachable, and counts the tries."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.tries = 0

    async def admit(self, checks: Sequence[Check], now: float) -> AdmitResult:
        self.tries += 1
        if self.down:
            raise ConnectionRefusedError("the limit storage is down")
        return await super().admit(checks, now)


def _storage(
    policy: Literal["fail-closed", "fail-open"],
) -> tuple[ResilientStorage, _FlakyStorage, FakeClock]:
    primary, clock = _FlakyStorage(), FakeClock()
    resilient = ResilientStorage(primary, policy=policy, timeout=1.0, retry_interval=2.0, clock=clock)
    return resilient, primary, clock


def _one_request(limit: int = 3) -> list[Check]:
    return [Check("user\x1frequests", limit, 1, True, 60.0)]


def test_fail_closed_refuses_tries_once_per_interval_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    """With the storage down, every admission is a 503 `limits_unavailable`; the storage is tried again
    only once `retry_interval` has passed since the last failure, not per request; the first try that
    works ends the outage, which is logged once as it starts and once as it ends."""
    caplog.set_level(logging.WARNING, "maas_gateway.limits")
    storage, primary, clock = _storage("fail-closed")

    async def scenario() -> None:
        assert (await storage.admit(_one_request(), clock.now)).admitted
        primary.down = True
        for _ in range(3):  # six seconds of requests, ten every half second
            for _ in range(4):
                for _ in range(10):
                    with pytest.raises(ServiceUnavailableError) as refused:
                        await storage.admit(_one_request(), clock.now)
                    assert refused.value.code == "limits_unavailable"
                clock.advance(0.5)
        assert primary.tries == 1 + 3, "one try at the outage's start, then one per 2 s interval"
        assert storage.failures == 3
        primary.down = False
        assert (await storage.admit(_one_request(), clock.now)).values == (2,), "the shared count again"
        assert not storage.degraded

    asyncio.run(scenario())
    assert [record.getMessage() for record in caplog.records] == [
        "The limit storage failed (ConnectionRefusedError: the limit storage is down); refusing requests "
        "until it answers again.",
        "The limit storage answers again; shared limits are back in force.",
    ]


def test_fail_open_counts_locally_then_returns_to_the_shared_counts() -> None:
    """With the storage down, fail-open admits against counters of this process alone, so the limit still
    holds per replica; once the storage is tried again and answers, its counts are used again."""
    storage, primary, clock = _storage("fail-open")

    async def scenario() -> None:
        assert (await storage.admit(_one_request(), clock.now)).values == (1,)
        primary.down = True
        local = [(await storage.admit(_one_request(), clock.now)).admitted for _ in range(4)]
        assert local == [True, True, True, False], "the local count starts from nothing"
        assert storage.degraded_operations == 4
        primary.down = False
        assert not (await storage.admit(_one_request(), clock.now)).admitted, "still local: not retried yet"
        clock.advance(2.0)
        assert (await storage.admit(_one_request(), clock.now)).values == (2,), "the shared count again"
        assert primary.tries == 1 + 1 + 1

    asyncio.run(scenario())
