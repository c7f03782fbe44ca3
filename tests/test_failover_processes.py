"""Failover with real processes: simulators killed under load, backends at capacity, fallback models,
and failed requests that cost nothing.

The gateway (`maas serve`) and the simulators (`maas sim`) run as processes on loopback; a backend is
killed with SIGKILL, as an out-of-memory kill or a lost node would end it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory
from tests.support.limits import HOUR, chat, long_windows, wait_for_fresh_window
from tests.support.processes import GatewayProcess, ServerProcess, free_port
from tests.support.simulators import simulator_fleet

ADMIN_KEY = "an-admin-key-that-is-long-enough-0123456789"
KEY = "enterpriseuser1_key"
# What a request in flight on a killed backend gets: it was sent, so it is not sent again.
LOST_IN_FLIGHT = "The model backend closed the connection or sent a broken answer."


def _with_admin(config: dict[str, Any]) -> dict[str, Any]:
    config["admin"] = {"key_sha256": hashlib.sha256(ADMIN_KEY.encode()).hexdigest()}
    return config


def _backend_states(gateway: GatewayProcess, model: str = "simulator-model") -> dict[str, str]:
    response = httpx.get(
        gateway.url + "/admin/models", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10
    )
    entry = next(m for m in response.json()["data"] if m["name"] == model)
    return {state["url"]: state["state"] for state in entry["backend_states"]}


@pytest.fixture
def simulators(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    """Three simulators, each taking 20 ms before its first token, so requests overlap under load."""
    with simulator_fleet(tmp_path, 3, "--ttft", "0.02") as started:
        yield started


@dataclass
class Outcome:
    order: int  # when the request started, among all of them
    status: int
    message: str


async def _load(
    url: str, requests: int, concurrency: int, kill_after: int, victim: ServerProcess
) -> tuple[list[Outcome], int]:
    """Send ``requests`` chat requests, ``concurrency`` at a time; SIGKILL ``victim`` once ``kill_after``
    have been answered. Returns every outcome and how many requests had started before the kill."""
    started = 0
    answered = 0
    started_before_kill = -1
    outcomes: list[Outcome] = []
    body = {"model": "simulator-model", "messages": [{"role": "user", "content": "Hello"}]}
    headers = {"Authorization": f"Bearer {KEY}"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:

        async def worker() -> None:
            nonlocal started, answered, started_before_kill
            while started < requests:
                order = started
                started += 1
                response = await client.post("/v1/chat/completions", json=body, headers=headers)
                message = "" if response.status_code == 200 else response.json()["error"]["message"]
                outcomes.append(Outcome(order, response.status_code, message))
                answered += 1
                if answered == kill_after:
                    assert victim.process is not None
                    victim.process.kill()
                    victim.process.wait(5)
                    started_before_kill = started

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes, started_before_kill


def test_a_backend_killed_under_load_fails_only_the_requests_it_held(
    simulators: list[ServerProcess], gateway_factory: GatewayFactory
) -> None:
    """Three backends, one SIGKILLed under a load of 12 concurrent clients: only requests it had been
    sent fail (its connection closes under them); every other request, and every one started after the
    kill, is served by the others. The dead backend is taken out (ejected or marked unhealthy) and
    `/admin/models` says so."""
    config = _with_admin(demo_dict(simulators[0].url, limits=False))
    config["server"]["access_log"] = False
    config["models"][0]["backends"] = [server.url for server in simulators]
    config["health_checks"] = {"interval": "500ms"}
    gateway = gateway_factory(config)
    victim = simulators[1]
    outcomes, started_before_kill = asyncio.run(
        _load(gateway.url, requests=600, concurrency=12, kill_after=200, victim=victim)
    )
    assert started_before_kill > 0, "The victim was never killed."
    failed = [outcome for outcome in outcomes if outcome.status != 200]
    assert all(outcome.status == 502 and outcome.message == LOST_IN_FLIGHT for outcome in failed), failed
    assert all(outcome.order < started_before_kill for outcome in failed), failed
    assert len(failed) <= 12, failed  # at most the requests in flight at the kill
    assert len(outcomes) == 600
    deadline = time.monotonic() + 10
    while _backend_states(gateway)[victim.url] == "healthy":
        assert time.monotonic() < deadline, "The killed backend is still shown as healthy."
        time.sleep(0.05)
    states = _backend_states(gateway)
    assert states[victim.url] in ("ejected", "unhealthy")
    assert [states[server.url] for server in (simulators[0], simulators[2])] == ["healthy", "healthy"]


def test_a_backend_at_capacity_passes_the_request_to_another(
    simulator: ServerProcess, fake_backend: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """A backend answering 429 next to a working one: every request is answered by the working one.
    Alone, its 429 reaches the caller with the backend's Retry-After and the caller's requests left
    unchanged."""
    config = demo_dict(simulator.url)
    config["models"][0].update(backends=[f"{fake_backend.url}/busy", simulator.url], balancing="round-robin")
    config["models"].append(
        {"name": "busy-only", "backends": [f"{fake_backend.url}/busy"], "served_name": "x"}
    )
    config["retry_budget"] = {"min_retries": 10}  # every 429 here may be retried
    gateway = gateway_factory(config)
    statuses = [chat(gateway.url, KEY).status_code for _ in range(4)]
    assert statuses == [200] * 4
    before = chat(gateway.url, KEY)
    busy = chat(gateway.url, KEY, model="busy-only")
    assert busy.status_code == 429
    assert busy.headers["retry-after"] == "3"
    assert busy.json()["error"]["code"] == "model_overloaded"
    after = chat(gateway.url, KEY)
    remaining = int(before.headers["x-ratelimit-remaining-requests"])
    assert int(after.headers["x-ratelimit-remaining-requests"]) == remaining - 1


def test_a_model_whose_backends_are_all_down_is_served_by_its_fallback(
    simulator: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """Nobody listens on the model's only backend: its fallback answers every request, and the answer
    names the model that served it."""
    config = demo_dict(simulator.url, limits=False)
    dead = f"http://127.0.0.1:{free_port()}"
    config["models"].append({"name": "down", "backends": [dead], "fallbacks": ["simulator-model"]})
    gateway = gateway_factory(config)
    for _ in range(8):
        response = chat(gateway.url, KEY, model="down")
        assert response.status_code == 200, response.text
        assert response.headers["x-maas-served-model"] == "simulator-model"
    served = chat(gateway.url, KEY)
    assert served.headers["x-maas-served-model"] == "simulator-model"


def test_a_502_costs_no_request_quota(simulator: ServerProcess, gateway_factory: GatewayFactory) -> None:
    """A request that fails at a backend is not counted: the requests left are as before it (in windows
    long enough that the three calls never straddle a boundary, which would refill them)."""
    config = long_windows(demo_dict(simulator.url))
    wait_for_fresh_window(HOUR)
    config["models"].append({"name": "down", "backends": [f"http://127.0.0.1:{free_port()}"]})
    gateway = gateway_factory(config)
    before = chat(gateway.url, KEY)
    failed = chat(gateway.url, KEY, model="down")
    assert failed.status_code == 502
    assert failed.json()["error"]["code"] == "backend_unavailable"
    after = chat(gateway.url, KEY)
    remaining = int(before.headers["x-ratelimit-remaining-requests"])
    assert int(after.headers["x-ratelimit-remaining-requests"]) == remaining - 1
