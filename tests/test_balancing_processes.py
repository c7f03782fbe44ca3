"""Queue-aware balancing with real processes: the gateway reads the simulators' `/metrics` in the
background and sends requests to the one with the least work, even work that other clients gave it."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from maas_gateway.balancing import parse_vllm_load
from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory
from tests.support.limits import chat
from tests.support.processes import ServerProcess
from tests.support.simulators import simulator_fleet

ADMIN_KEY = "an-admin-key-that-is-long-enough-0123456789"


@pytest.fixture
def two_simulators(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    """Two simulators whose streams take half a second per token (ten seconds for a whole answer)."""
    with simulator_fleet(tmp_path, 2, "--itl", "0.5") as started:
        yield started


def _successes(server: ServerProcess) -> int:
    """Requests the backend finished, whatever their finish reason (one series per reason)."""
    text = httpx.get(server.url + "/metrics", timeout=5).text
    lines = [line for line in text.splitlines() if line.startswith("vllm:request_success_total{")]
    assert lines, text
    return sum(int(float(line.split()[-1])) for line in lines)


def _running(server: ServerProcess) -> float:
    sample = parse_vllm_load(httpx.get(server.url + "/metrics", timeout=5).text, "simulator-model")
    return sample.running if sample is not None else 0.0


def test_queue_aware_balancing_avoids_a_backend_busy_with_other_clients(
    two_simulators: list[ServerProcess], gateway_factory: GatewayFactory
) -> None:
    """Six long streams sent straight to one simulator (the gateway never sees them): the gateway's own
    requests all go to the other, which least-outstanding, counting only its own, would not do."""
    busy, idle = two_simulators
    config = demo_dict(busy.url, limits=False)
    config["admin"] = {"key_sha256": hashlib.sha256(ADMIN_KEY.encode()).hexdigest()}
    config["models"][0].update(backends=[busy.url, idle.url], balancing="queue-aware")
    config["queue_aware"] = {"scrape_interval": "100ms", "stale_after": "2s"}
    gateway = gateway_factory(config)
    release = threading.Event()

    def hold() -> None:
        body = {"model": "simulator-model", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}
        with httpx.stream("POST", busy.url + "/v1/chat/completions", json=body, timeout=60) as response:
            for _ in response.iter_lines():
                if release.is_set():
                    return

    holders = [threading.Thread(target=hold, daemon=True) for _ in range(6)]
    for holder in holders:
        holder.start()
    try:
        deadline = time.monotonic() + 10
        while _running(busy) < 6:
            assert time.monotonic() < deadline, (
                "The held streams never showed in the busy simulator's metrics."
            )
            time.sleep(0.02)
        while True:  # the gateway has scraped the busy simulator since the streams started
            models = httpx.get(
                gateway.url + "/admin/models", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=5
            ).json()["data"]
            states = {s["url"]: s for s in models[0]["backend_states"]}
            load = states[busy.url]["load"]
            if load is not None and load["running"] >= 6:
                break
            assert time.monotonic() < deadline, states
            time.sleep(0.02)
        before = _successes(busy), _successes(idle)
        for _ in range(6):
            assert chat(gateway.url, "enterpriseuser1_key", max_tokens=1).status_code == 200
        assert (_successes(busy), _successes(idle)) == (before[0], before[1] + 6)
        assert _running(busy) == 6  # the streams were still holding it while the requests went elsewhere
    finally:
        release.set()
        for holder in holders:
            holder.join(30)
