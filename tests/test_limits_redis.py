"""Limits shared through a real redis-server: exact across replicas, kept across restarts, and a
documented failure policy when Redis is down or slow."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory
from tests.support.limits import HOUR, chat, long_windows, wait_for_fresh_window
from tests.support.processes import ServerProcess, free_port, maas
from tests.support.redis_server import RedisServer


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


def _config(simulator: ServerProcess, redis_url: str, **limits: Any) -> dict[str, Any]:
    """The demo on ``redis_url``, with windows 60 times as long, so no count straddles a window's end."""
    config = long_windows(demo_dict(simulator.url))
    config["limits"].update({"storage": redis_url, **limits})
    return config


def _spread(targets: Sequence[tuple[str, str]], **extra: Any) -> list[int]:
    """Send one chat request per (gateway url, key), all at once; return the statuses."""

    async def run() -> list[int]:
        limits = httpx.Limits(max_connections=len(targets), max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            body = {"model": "simulator-model", "messages": [{"role": "user", "content": "Hi"}], **extra}

            async def one(url: str, key: str) -> int:
                headers = {"Authorization": f"Bearer {key}"}
                return (
                    await client.post(url + "/v1/chat/completions", json=body, headers=headers)
                ).status_code

            return list(await asyncio.gather(*(one(url, key) for url, key in targets)))

    return asyncio.run(run())


def test_three_replicas_share_request_and_token_limits_exactly(
    simulator: ServerProcess, redis_server: RedisServer, gateway_factory: GatewayFactory
) -> None:
    """Across three gateway processes: a free user gets 5 requests, an enterprise burst of 130 gets 100,
    and tokens spent on one replica count on the others."""
    wait_for_fresh_window(HOUR)
    gateways = [gateway_factory(_config(simulator, redis_server.url)) for _ in range(3)]
    statuses = [chat(gateways[i % 3].url, "freeuser1_key", max_tokens=1).status_code for i in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    burst = _spread([(gateways[i % 3].url, "enterpriseuser1_key") for i in range(130)], max_tokens=1)
    assert Counter(burst) == Counter({200: 100, 429: 30})
    spent = [chat(gateways[i % 3].url, "freeuser2_key", max_tokens=40).status_code for i in range(5)]
    assert spent == [200] * 4 + [429]


def test_workers_share_limits_through_redis(
    simulator: ServerProcess, redis_server: RedisServer, tmp_path: Path
) -> None:
    """`maas serve --workers 3` on one port: 60 concurrent requests from a free user admit exactly 5."""
    import yaml

    config = _config(simulator, redis_server.url)
    port = free_port()
    config["server"]["port"] = port
    config["metrics"] = {"listen": f"127.0.0.1:{free_port()}"}
    path = tmp_path / "workers.yaml"
    path.write_text(yaml.safe_dump(config), "utf-8")
    wait_for_fresh_window(HOUR)
    with ServerProcess(
        maas("serve", "--config", str(path), "--workers", "3"), port, tmp_path / "w.log"
    ) as gw:
        statuses = _spread([(gw.url, "freeuser1_key")] * 60, max_tokens=1)
    assert Counter(statuses) == Counter({200: 5, 429: 55})


def test_counts_survive_a_gateway_restart(
    simulator: ServerProcess, redis_server: RedisServer, gateway_factory: GatewayFactory
) -> None:
    """Counters live in Redis: a restarted gateway remembers the requests already made."""
    wait_for_fresh_window(HOUR)
    first = gateway_factory(_config(simulator, redis_server.url))
    for _ in range(3):
        assert chat(first.url, "freeuser1_key", max_tokens=1).status_code == 200
    first.stop()
    second = gateway_factory(_config(simulator, redis_server.url))
    assert [chat(second.url, "freeuser1_key", max_tokens=1).status_code for _ in range(3)] == [200, 200, 429]


def test_fail_closed_refuses_with_503_and_recovers(
    simulator: ServerProcess, redis_server: RedisServer, gateway_factory: GatewayFactory
) -> None:
    """With Redis down, fail-closed answers 503 `limits_unavailable` and /ready is 503; when Redis is back,
    limiting resumes by itself (the 5 s deadline is 25 retry intervals: only no recovery fails). How
    often Redis is tried meanwhile is checked with a clock in test_limits_resilience.py."""
    gateway = gateway_factory(_config(simulator, redis_server.url, retry_interval="0.2s"))
    assert chat(gateway.url, "premiumuser1_key", max_tokens=1).status_code == 200
    redis_server.stop()
    refused = chat(gateway.url, "premiumuser1_key", max_tokens=1)
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "limits_unavailable"
    assert httpx.get(gateway.url + "/ready").status_code == 503
    redis_server.start()
    deadline = time.monotonic() + 5
    while (answer := chat(gateway.url, "premiumuser1_key", max_tokens=1)).status_code != 200:
        assert answer.status_code == 503, answer.text
        assert time.monotonic() < deadline, "limiting did not resume after Redis came back"
        time.sleep(0.05)
    assert httpx.get(gateway.url + "/ready").status_code == 200


def test_fail_open_limits_per_replica_then_returns_to_redis(
    simulator: ServerProcess, redis_server: RedisServer, gateway_factory: GatewayFactory
) -> None:
    """With Redis down, fail-open keeps limiting in the replica's own memory and logs the degradation;
    when Redis is back, its shared counters are used again (the first 200 after the local 429s is the
    first request Redis counted)."""
    wait_for_fresh_window(HOUR)
    gateway = gateway_factory(
        _config(simulator, redis_server.url, failure_policy="fail-open", retry_interval="0.2s")
    )
    for _ in range(2):
        assert chat(gateway.url, "freeuser1_key", max_tokens=1).status_code == 200
    redis_server.stop()
    local = [chat(gateway.url, "freeuser1_key", max_tokens=1).status_code for _ in range(6)]
    assert local == [200] * 5 + [429]
    assert "counting in this process only" in gateway.log()
    redis_server.start()  # a fresh, empty Redis: the shared count starts again
    deadline = time.monotonic() + 5
    while (first := chat(gateway.url, "freeuser1_key", max_tokens=1)).status_code != 200:
        assert first.status_code == 429, first.text  # the local count, until Redis is tried again
        assert time.monotonic() < deadline, "the shared counters were not used again"
        time.sleep(0.05)
    back = [200] + [chat(gateway.url, "freeuser1_key", max_tokens=1).status_code for _ in range(5)]
    assert back == [200] * 5 + [429]
    assert "shared limits are back in force" in gateway.log()
    assert int(redis_server.client().get(_request_key(redis_server)) or 0) == 5


def _request_key(server: RedisServer) -> str:
    keys = [str(k.decode()) for k in server.client().scan_iter("maas:limits:{freeuser1}:requests:*")]
    assert len(keys) == 1
    return keys[0]


def _wait_until_asleep(server: RedisServer) -> None:
    """Return once Redis stops answering (a DEBUG SLEEP has begun): a PING gets no answer in 0.25 s.

    A raw socket, since redis-py retries a command that timed out until Redis answers it."""
    deadline = time.monotonic() + 5
    while True:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as probe:
            probe.sendall(b"PING\r\n")
            probe.settimeout(0.25)
            try:
                assert probe.recv(64) == b"+PONG\r\n"
            except TimeoutError:
                return
        assert time.monotonic() < deadline, "Redis never went to sleep"
        time.sleep(0.01)


def test_slow_redis_never_holds_a_request_past_the_timeout(
    simulator: ServerProcess, redis_server: RedisServer, gateway_factory: GatewayFactory
) -> None:
    """While Redis is stuck (DEBUG SLEEP 2 s), a request is answered as the policy says (fail-open 200,
    fail-closed 503) after the 0.3 s storage timeout, while Redis is still asleep: no answer waits for it."""
    policies = {"fail-open": 200, "fail-closed": 503}
    gateways = {
        policy: gateway_factory(
            _config(simulator, redis_server.url, failure_policy=policy, storage_timeout="0.3s")
        )
        for policy in policies
    }
    for gateway in gateways.values():
        assert chat(gateway.url, "premiumuser1_key", max_tokens=1).status_code == 200
    woke = threading.Event()

    def stall() -> None:
        client = redis_server.client()
        client.execute_command("DEBUG", "SLEEP", "2")  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        woke.set()
        client.close()

    sleeper = threading.Thread(target=stall)
    sleeper.start()
    try:
        _wait_until_asleep(redis_server)
        targets = [(gateway.url, "premiumuser1_key") for gateway in gateways.values()]
        statuses = _spread(targets, max_tokens=1)
        assert not woke.is_set(), "an answer waited for Redis to wake up"
    finally:
        sleeper.join()
    assert statuses == list(policies.values())
