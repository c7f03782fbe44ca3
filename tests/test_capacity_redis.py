"""Capacity shared through a real redis-server by real gateway processes: two replicas never pass a
model's cap together, a better tier waiting on one replica gets the slot freed on the other, and the
slots of a gateway killed while holding them come back after the lease time.

The backend runs in the test's event loop (tests/support/held_backend.py) and counts what it sees; the
gateways start in threads so that it keeps answering meanwhile.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory
from tests.support.held_backend import HeldBackend
from tests.support.processes import GatewayProcess
from tests.support.raw_backend import serving
from tests.support.redis_server import RedisServer

KEYS = {
    "free1": "freeuser1_key",
    "free2": "freeuser2_key",
    "premium1": "premiumuser1_key",
    "enterprise": "enterpriseuser1_key",
}


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


def _config(backend: str, redis_url: str, capacity: dict[str, Any], **settings: Any) -> dict[str, Any]:
    config = demo_dict(backend, limits=False)  # the request windows are not what these tests count
    config["limits"]["storage"] = redis_url
    config["models"][0]["capacity"] = capacity
    config["capacity"] = {
        "tier_order": ["enterprise", "premium", "free"],
        "poll_interval": "50ms",
        **settings,
    }
    config["server"]["access_log"] = False
    return config


async def _start(factory: GatewayFactory, config: dict[str, Any], count: int) -> list[GatewayProcess]:
    return list(await asyncio.gather(*(asyncio.to_thread(factory, config) for _ in range(count))))


async def _chat(client: httpx.AsyncClient, gateway: GatewayProcess, who: str, text: str) -> int:
    body = {"model": "simulator-model", "messages": [{"role": "user", "content": text}]}
    headers = {"Authorization": f"Bearer {KEYS[who]}"}
    response = await client.post(gateway.url + "/v1/chat/completions", json=body, headers=headers)
    return response.status_code


async def _metric(client: httpx.AsyncClient, gateway: GatewayProcess, series: str) -> float:
    text = (await client.get(gateway.metrics_url + "/metrics")).text
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def _until_metric(
    client: httpx.AsyncClient, gateway: GatewayProcess, series: str, value: float
) -> None:
    deadline = time.monotonic() + 20
    while await _metric(client, gateway, series) != value:
        assert time.monotonic() < deadline, f"{series} did not reach {value:g}"
        await asyncio.sleep(0.05)


def _depth(tier: str) -> str:
    return f'maas_capacity_queue_depth{{model="simulator-model",tier="{tier}"}}'


def test_two_replicas_on_one_redis_never_pass_the_models_in_flight_cap(
    redis_server: RedisServer, gateway_factory: GatewayFactory
) -> None:
    """A cap of 3 and 40 requests spread over two gateways at once: every request is served in turn,
    and the backend never has more than 3 in progress (it does reach 3)."""
    backend = HeldBackend(delay=0.05)

    async def scenario() -> None:
        async with serving(backend.handle) as url:
            config = _config(url, redis_server.url, {"max_in_flight": 3}, queue_timeout="60s")
            gateways = await _start(gateway_factory, config, 2)
            users = list(KEYS)
            async with httpx.AsyncClient(timeout=90, limits=httpx.Limits(max_connections=100)) as client:
                statuses = await asyncio.gather(
                    *(_chat(client, gateways[n % 2], users[n % 4], f"r{n}") for n in range(40))
                )
        assert Counter(statuses) == {200: 40}
        assert backend.most_at_once == 3

    asyncio.run(scenario())


def test_an_enterprise_request_waiting_on_one_replica_gets_the_slot_freed_on_the_other(
    redis_server: RedisServer, gateway_factory: GatewayFactory
) -> None:
    """One slot, held through gateway A; five free requests wait on A, then an enterprise request on B.
    When the slot is freed on A, the next request the backend sees is B's enterprise request."""
    backend = HeldBackend()

    async def scenario() -> None:
        async with serving(backend.handle) as url:
            # Polls 200 ms apart keep B's registration alive for 800 ms between two polls: a loaded test
            # machine may stall a gateway for longer than the default's 250 ms.
            capacity = {"max_in_flight": 1}
            config = _config(url, redis_server.url, capacity, queue_timeout="60s", poll_interval="200ms")
            gateway_a, gateway_b = await _start(gateway_factory, config, 2)
            async with httpx.AsyncClient(timeout=90) as client:
                holder = asyncio.create_task(_chat(client, gateway_a, "premium1", "hold"))
                await backend.until_held(1)
                free = [
                    asyncio.create_task(_chat(client, gateway_a, ("free1", "free2")[n % 2], f"free{n}"))
                    for n in range(5)
                ]
                await _until_metric(client, gateway_a, _depth("free"), 5)
                boss = asyncio.create_task(_chat(client, gateway_b, "enterprise", "enterprise"))
                await _until_metric(client, gateway_b, _depth("enterprise"), 1)
                backend.let_go()
                statuses = await asyncio.gather(holder, boss, *free)
        assert statuses == [200] * 7
        assert backend.arrivals[:2] == ["hold", "enterprise"]

    asyncio.run(scenario())


def test_the_slots_of_a_killed_gateway_come_back_after_the_lease_time(
    redis_server: RedisServer, gateway_factory: GatewayFactory
) -> None:
    """Gateway A holds both slots of a model with requests in progress and is killed (SIGKILL: nothing
    released). Its two leases stay in Redis; a request to gateway B waits in line and is served once they
    expire (lease time 1 s here), which B's metrics show as a served wait."""
    backend = HeldBackend()

    async def scenario() -> None:
        async with serving(backend.handle) as url:
            config = _config(url, redis_server.url, {"max_in_flight": 2}, queue_timeout="30s", lease_ttl="1s")
            gateway_a, gateway_b = await _start(gateway_factory, config, 2)
            async with httpx.AsyncClient(timeout=60) as client:
                held = [asyncio.create_task(_chat(client, gateway_a, "free1", f"hold{n}")) for n in range(2)]
                await backend.until_held(2)
                gateway_a.stop(signal.SIGKILL)
                await asyncio.gather(*held, return_exceptions=True)  # their connection died with A
                redis = redis_server.client()
                try:
                    leases = redis.zrange("maas:capacity:{c}:slots:model:simulator-model", 0, -1)
                finally:
                    redis.close()
                assert len(leases) == 2, "the killed gateway's leases are still there"
                status = await _chat(client, gateway_b, "free2", "after")
                served = (
                    'maas_capacity_wait_seconds_count{model="simulator-model",outcome="served",tier="free"}'
                )
                assert await _metric(client, gateway_b, served) == 1.0
        assert status == 200
        assert sorted(backend.arrivals[:2]) == ["hold0", "hold1"]  # sent together: in either order
        assert backend.arrivals[2:] == ["after"]

    asyncio.run(scenario())
