"""A team's budget raced for by its members on two replicas sharing Redis, over real HTTP: the last unit
goes to exactly one request (requests), and reserve mode never lets the team spend past its tokens."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory
from tests.support.limits import HOUR, wait_for_fresh_window
from tests.support.processes import ServerProcess
from tests.support.redis_server import RedisServer

MEMBERS = ("alice", "bob", "carol", "dave")


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def _team_config(backend: str, storage: str, team_limit: dict[str, Any], *, reserve: bool) -> dict[str, Any]:
    """Four premium users, each with a key of the team `research`, whose limit is ``team_limit``; their
    own limits are far away, so only the team's can bind."""
    config = demo_dict(backend)
    config["limits"] = {"enabled": True, "storage": storage}
    config["tiers"]["premium"] = {
        "reserve": reserve,
        "limits": [
            {"limit": 1000, "unit": "requests", "window": "1h"},
            {"limit": 1_000_000, "unit": "tokens", "window": "1h"},
        ],
    }
    config["teams"] = {"research": {"limits": [team_limit]}}
    config["api_keys"] += [
        {"user": user, "tier": "premium", "key": f"{user}-team-key", "team": "research"} for user in MEMBERS
    ]
    return config


def _race(urls: list[str], requests: int, **extra: Any) -> list[tuple[int, int, str]]:
    """``requests`` chats at once, spread over the members and the replicas: each one's status, the
    tokens its answer reports (0 when refused) and its error message ('' when answered)."""

    async def run() -> list[tuple[int, int, str]]:
        limits = httpx.Limits(max_connections=requests, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:

            async def one(index: int) -> tuple[int, int, str]:
                key = f"{MEMBERS[index % len(MEMBERS)]}-team-key"
                body = {"model": "simulator-model", "messages": [{"role": "user", "content": "Hi"}], **extra}
                response = await client.post(
                    urls[index % len(urls)] + "/v1/chat/completions",
                    json=body,
                    headers={"Authorization": f"Bearer {key}"},
                )
                answer = orjson.loads(response.content)
                if response.status_code == 200:
                    return 200, int(answer["usage"]["total_tokens"]), ""
                return response.status_code, 0, str(answer["error"]["message"])

            return list(await asyncio.gather(*(one(index) for index in range(requests))))

    return asyncio.run(run())


def test_the_last_request_of_a_team_goes_to_exactly_one_member(
    simulator: ServerProcess, gateway_factory: GatewayFactory, redis: RedisServer
) -> None:
    """24 requests at once from four members of a team allowed 7 requests an hour, through two replicas:
    exactly 7 are answered and 17 refused naming the team (overshoot 0; passes at once: the admission
    over all scopes is one Lua script)."""
    wait_for_fresh_window(HOUR)
    config = _team_config(
        simulator.url, redis.url, {"limit": 7, "unit": "requests", "window": "1h"}, reserve=False
    )
    gateways = [gateway_factory(config), gateway_factory(config)]
    results = _race([gateway.url for gateway in gateways], 24, max_tokens=1)
    statuses = sorted(status for status, _, _ in results)
    assert statuses == [200] * 7 + [429] * 17
    refusals = [message for status, _, message in results if status == 429]
    assert all("the team 'research'" in message for message in refusals), refusals[:2]


def test_reserve_mode_never_lets_a_team_spend_past_its_tokens(
    simulator: ServerProcess, gateway_factory: GatewayFactory, redis: RedisServer
) -> None:
    """20 requests of up to 40 tokens at once from four members of a team with 300 tokens an hour in
    reserve mode, through two replicas: what the answers report adds up to at most 300 (overshoot 0),
    some are refused, and none failed otherwise (passes at once)."""
    wait_for_fresh_window(HOUR)
    config = _team_config(
        simulator.url, redis.url, {"limit": 300, "unit": "tokens", "window": "1h"}, reserve=True
    )
    gateways = [gateway_factory(config), gateway_factory(config)]
    results = _race([gateway.url for gateway in gateways], 20, max_tokens=40)
    assert {status for status, _, _ in results} <= {200, 429}
    spent = sum(tokens for _, tokens, _ in results)
    admitted = sum(status == 200 for status, _, _ in results)
    print(f"team reserve race: {admitted} admitted, {spent} of 300 tokens spent")
    assert 0 < admitted < 20
    assert spent <= 300
