"""One contract for every ``LimitStorage``: in process, standalone Redis and Redis Cluster behave the same.

Check-and-count is all or nothing, tokens are admitted while any are left, refunds go below nothing
never, a counter's expiry is set once when it is created, and concurrent admissions never exceed a limit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from maas_gateway.limits.redis_storage import RedisLimitStorage
from maas_gateway.limits.storage import Check, InMemoryLimitStorage, LimitStorage
from tests.support.redis_server import RedisServer, single_node_cluster

Contract = Callable[[LimitStorage], Awaitable[None]]


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[Contract], None]]:
    """Runs a contract coroutine against a fresh storage of the parametrized kind."""
    server: RedisServer | None = None
    url = ""
    if request.param == "redis":
        server = RedisServer(tmp_path).start()
        url = server.url
    elif request.param == "redis-cluster":
        server = single_node_cluster(tmp_path)
        url = f"redis+cluster://127.0.0.1:{server.port}/0"

    def runner(contract: Contract) -> None:
        async def main() -> None:
            storage: LimitStorage = InMemoryLimitStorage() if not url else RedisLimitStorage(url, timeout=2.0)
            try:
                await contract(storage)
            finally:
                await storage.aclose()

        asyncio.run(main())

    yield runner
    if server is not None:
        server.stop()


def _check(key: str, limit: int, cost: int, *, must_fit: bool = True, ttl: float = 60.0) -> Check:
    return Check(f"user\x1f{key}", limit, cost, must_fit, ttl)


def test_admission_is_all_or_nothing(run: Callable[[Contract], None]) -> None:
    """When one check fails, no counter moves, and the answer names the failed check and the values."""

    async def contract(storage: LimitStorage) -> None:
        now = time.time()
        first = await storage.admit([_check("a", 10, 3), _check("b", 5, 5)], now)
        assert (first.admitted, first.values, first.failed) == (True, (3, 5), None)
        refused = await storage.admit([_check("a", 10, 3), _check("b", 5, 1)], now)
        assert (refused.admitted, refused.values, refused.failed) == (False, (3, 5), 1)
        again = await storage.admit([_check("a", 10, 0), _check("b", 5, 0, must_fit=False)], now)
        assert (again.admitted, again.failed) == (False, 1)
        assert again.values == (3, 5), "nothing was added by refused admissions"

    run(contract)


def test_tokens_are_admitted_while_any_are_left(run: Callable[[Contract], None]) -> None:
    """A check that need not fit passes while the counter is below the limit, whatever its cost."""

    async def contract(storage: LimitStorage) -> None:
        now = time.time()
        assert (await storage.admit([_check("t", 100, 90, must_fit=False)], now)).admitted
        assert (await storage.admit([_check("t", 100, 50, must_fit=False)], now)).values == (140,)
        assert not (await storage.admit([_check("t", 100, 1, must_fit=False)], now)).admitted

    run(contract)


def test_adds_and_refunds_move_counters_both_ways(run: Callable[[Contract], None]) -> None:
    """`add` creates counters, adds and subtracts, and returns the new values in order."""

    async def contract(storage: LimitStorage) -> None:
        now = time.time()
        keys = ["user\x1fx", "user\x1fy"]
        assert await storage.add(keys, [7, 2], [60.0, 60.0], now) == (7, 2)
        assert await storage.add(keys, [-3, 0], [60.0, 60.0], now) == (4, 2)
        assert (await storage.admit([_check("x", 5, 1)], now)).values == (5,)

    run(contract)


def test_a_counter_expires_with_the_window_it_was_created_for(run: Callable[[Contract], None]) -> None:
    """The expiry is set when a counter is created; later additions with longer TTLs do not extend it."""

    async def contract(storage: LimitStorage) -> None:
        assert (await storage.admit([_check("w", 10, 4, ttl=0.4)], time.time())).values == (4,)
        assert (await storage.admit([_check("w", 10, 1, ttl=60.0)], time.time())).values == (5,)
        deadline = time.monotonic() + 5
        while (await storage.admit([_check("w", 10, 0)], time.time())).values != (0,):
            assert time.monotonic() < deadline, "the counter outlived its window"
            await asyncio.sleep(0.05)

    run(contract)


def test_concurrent_admissions_never_exceed_the_limit(run: Callable[[Contract], None]) -> None:
    """A hundred simultaneous admissions against a limit of ten: exactly ten pass."""

    async def contract(storage: LimitStorage) -> None:
        now = time.time()
        results = await asyncio.gather(*(storage.admit([_check("c", 10, 1)], now) for _ in range(100)))
        assert sum(result.admitted for result in results) == 10
        assert await storage.ping()

    run(contract)


def test_peek_reads_counters_without_changing_them(run: Callable[[Contract], None]) -> None:
    """``peek`` returns each counter's value (0 for one never counted) and changes nothing, so two
    peeks agree and a following admission sees the same values."""

    async def contract(storage: LimitStorage) -> None:
        now = time.time()
        await storage.admit([_check("a", 10, 3), _check("b", 10, 1)], now)
        keys = ["user\x1fa", "user\x1fb", "user\x1fnever"]
        assert await storage.peek(keys, now) == (3, 1, 0)
        assert await storage.peek(keys, now) == (3, 1, 0)
        assert await storage.peek([], now) == ()
        after = await storage.admit([_check("a", 10, 0, must_fit=False)], now)
        assert after.values == (3,)

    run(contract)
