"""How far token limits can be overshot, over real HTTP: a gateway with a usage ledger, and the simulator.

Reserve mode is strict: 30 concurrent streams against a 300-token limit are charged at most 300 tokens
in the ledger. The default mode charges after the answer, so concurrent requests admitted while tokens
were left can overshoot, by at most the requests in progress times the largest answer; the measured
overshoot is printed (``pytest -rP`` shows it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.support.gateways import GatewayFactory
from tests.support.ledger import ADMIN, ledger_config
from tests.support.limits import HOUR, chat, wait_for_fresh_window
from tests.support.polling import wait_until
from tests.support.processes import ServerProcess
from tests.support.simulators import simulator_fleet

LIMIT = 300
STREAMS = 30


@pytest.fixture(scope="module")
def slow_simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A simulator taking 10 ms per token, so that 30 streams of 50 tokens are in progress together."""
    with simulator_fleet(tmp_path_factory.mktemp("slow-sim"), 1, "--itl", "0.01") as (server,):
        yield server


def _config(backend: str, tmp_path: Path, *, reserve: bool) -> dict[str, Any]:
    config = ledger_config(backend, f"sqlite+aiosqlite:///{tmp_path / 'maas.db'}", tmp_path / "spool")
    config["tiers"]["free"] = {
        "reserve": reserve,
        "limits": [{"limit": LIMIT, "unit": "tokens", "window": "1h"}],
    }
    return config


def _streams(url: str, count: int, max_tokens: int) -> list[tuple[int, dict[str, str], int]]:
    """``count`` concurrent streams of one free user: each one's status, headers and charged tokens as its
    usage chunk says (0 when refused)."""

    async def run() -> list[tuple[int, dict[str, str], int]]:
        limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
            body = {
                "model": "simulator-model",
                "messages": [{"role": "user", "content": "Hello"}],
                "max_tokens": max_tokens,
                "stream": True,
                "stream_options": {"include_usage": True},
            }

            async def one() -> tuple[int, dict[str, str], int]:
                headers = {"Authorization": "Bearer freeuser1_key"}
                async with client.stream(
                    "POST", "/v1/chat/completions", json=body, headers=headers
                ) as response:
                    total = 0
                    async for line in response.aiter_lines():
                        if line.startswith("data: {"):
                            usage = orjson.loads(line[6:]).get("usage")
                            total = usage["total_tokens"] if usage else total
                    return response.status_code, dict(response.headers), total

            return list(await asyncio.gather(*(one() for _ in range(count))))

    return asyncio.run(run())


def _ledger_charged(gateway: ServerProcess, requests: int) -> int:
    """The tokens the ledger charged the free user, once all ``requests`` admitted requests are in it."""

    def row() -> dict[str, Any] | None:
        response = httpx.get(
            gateway.url + "/admin/usage", params={"group_by": "user"}, headers=ADMIN, timeout=30
        )
        rows = [r for r in response.json()["data"] if r["user"] == "freeuser1"]
        return rows[0] if rows and rows[0]["requests"] - rows[0]["rate_limited"] >= requests else None

    found = wait_until(row, "the ledger recording every admitted request")
    assert found is not None
    return int(found["charged_tokens"])


def test_reserve_mode_never_overshoots_under_concurrency(
    slow_simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """30 concurrent streams, each asking for 50 tokens, against 300 tokens in reserve mode: the ledger
    charges at most 300; a lowered answer says so in x-maas-max-tokens-clamped and stops there; refusals
    name what the request needs and what remains."""
    wait_for_fresh_window(HOUR)
    gateway = gateway_factory(_config(slow_simulator.url, tmp_path, reserve=True))
    results = _streams(gateway.url, STREAMS, 50)
    admitted = [(headers, total) for status, headers, total in results if status == 200]
    refused = [status for status, _, _ in results if status != 200]
    assert set(refused) <= {429}
    assert refused, "30 x at least 26 tokens cannot fit in 300"
    for headers, total in admitted:
        clamped = headers.get("x-maas-max-tokens-clamped")
        if clamped is not None:
            original, lowered = (int(part) for part in clamped.split(" -> "))
            assert original == 50
            assert 16 <= lowered < 50
            assert total <= 10 + lowered  # the simulator's prompt is 10 tokens; the answer stopped there
    charged = _ledger_charged(gateway, len(admitted))
    clamps = sum("x-maas-max-tokens-clamped" in headers for headers, _ in admitted)
    print(f"reserve mode: {len(admitted)} admitted ({clamps} lowered), {charged} tokens charged")
    assert charged == sum(total for _, total in admitted)
    assert charged <= LIMIT  # overshoot 0


def test_default_mode_overshoot_is_bounded_by_concurrency_times_the_largest_answer(
    slow_simulator: ServerProcess,
    gateway_factory: GatewayFactory,
    tmp_path: Path,
) -> None:
    """The same 30 streams without reserve: requests are admitted while tokens are left and charged after
    their answers, so the ledger may pass 300, by no more than 30 times the largest answer."""
    wait_for_fresh_window(HOUR)
    gateway = gateway_factory(_config(slow_simulator.url, tmp_path, reserve=False))
    results = _streams(gateway.url, STREAMS, 50)
    admitted = [total for status, _, total in results if status == 200]
    charged = _ledger_charged(gateway, len(admitted))
    largest = max(admitted)
    overshoot = max(0, charged - LIMIT)
    print(f"default mode: {len(admitted)} admitted, {charged} tokens charged, overshoot {overshoot}")
    assert charged == sum(admitted)
    assert overshoot <= STREAMS * largest


def test_a_request_without_room_for_its_answer_is_lowered_then_the_next_refused(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """300 tokens in reserve mode: max_tokens 1000 is forwarded as 271 (300 less the prompt's bound of 29),
    the answer stops there and says so; the next request is refused with the numbers; a request without
    max_tokens gets the tier's default (1024) lowered the same way."""
    wait_for_fresh_window(HOUR)
    gateway = gateway_factory(_config(simulator.url, tmp_path, reserve=True))
    first = chat(gateway.url, "freeuser1_key", max_tokens=1000)
    assert first.status_code == 200
    assert first.headers["x-maas-max-tokens-clamped"] == "1000 -> 271"
    assert first.json()["usage"]["completion_tokens"] == 271
    assert first.json()["choices"][0]["finish_reason"] == "length"
    assert first.headers["x-ratelimit-consumed-tokens"] == "281"
    assert first.headers["x-ratelimit-remaining-tokens"] == "19"
    second = chat(gateway.url, "freeuser1_key", max_tokens=50)
    assert second.status_code == 429
    message = second.json()["error"]["message"]
    assert "this request needs up to 79 tokens, and at least 45 with its output lowered" in message
    assert "but 19 remain of 300 tokens per 1h" in message
    assert int(second.headers["retry-after"]) >= 1
    unasked = chat(gateway.url, "freeuser2_key")
    assert unasked.headers["x-maas-max-tokens-clamped"] == "1024 -> 271"
    assert unasked.json()["usage"]["completion_tokens"] == 271


def test_consumed_tokens_agree_with_a_completion_token_window(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """With only a completion-token window, x-ratelimit-consumed-tokens counts output tokens, so it adds
    up with x-ratelimit-remaining-tokens to what remained before."""
    config = _config(simulator.url, tmp_path, reserve=False)
    config["tiers"]["free"]["limits"] = [{"limit": 100, "unit": "completion_tokens", "window": "1h"}]
    wait_for_fresh_window(HOUR)
    gateway = gateway_factory(config)
    answer = chat(gateway.url, "freeuser1_key", max_tokens=20)
    assert answer.json()["usage"]["completion_tokens"] == 20
    assert answer.headers["x-ratelimit-consumed-tokens"] == "20"
    assert answer.headers["x-ratelimit-remaining-tokens"] == "80"


def test_a_body_too_deep_to_forward_is_a_400_and_costs_no_tokens(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """An attacker's chat body with tools nested 300 levels deep, in reserve mode (so the gateway must write
    max_tokens into it): a 400 in OpenAI's shape, not a crash, and the reservation is given back."""
    config = _config(simulator.url, tmp_path, reserve=True)
    config["tiers"]["free"]["limits"] = [{"limit": 100_000, "unit": "tokens", "window": "1h"}]
    wait_for_fresh_window(HOUR)
    gateway = gateway_factory(config)
    messages = b'[{"role":"user","content":"Hello"}]'
    body = (
        b'{"model":"simulator-model","messages":' + messages + b',"tools":' + b"[" * 300 + b"]" * 300 + b"}"
    )
    headers = {"Authorization": "Bearer freeuser1_key", "Content-Type": "application/json"}
    refused = httpx.post(gateway.url + "/v1/chat/completions", content=body, headers=headers, timeout=30)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_json"
    assert "more than 254 levels deep" in refused.json()["error"]["message"]
    after = chat(gateway.url, "freeuser1_key", max_tokens=10)
    assert after.status_code == 200
    assert after.headers["x-ratelimit-remaining-tokens"] == str(100_000 - 20)
