"""The balancing units wired in: their settings, their state across reloads, their background polls.

In-process over ``InMemoryTransport``: the handler answers the backends' ``/health`` and ``/metrics`` as
well as their requests, since the polls go through the gateway's own upstream transport.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import yaml

from maas_gateway.application import Application
from maas_gateway.application.policies import pool_spec
from maas_gateway.balancing import FailureKind, HealthState, PollSpec
from maas_gateway.config import ConfigError, demo_config_text, parse_config
from maas_gateway.upstream import InMemoryTransport, MemoryAnswer, UpstreamRequest
from maas_gateway.upstream.target import parse_target
from tests.support.memory_backend import memory_chat_answer
from tests.support.polling import wait_until_async

USAGE = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
KEY = {"Authorization": "Bearer enterpriseuser1_key"}
MODEL = "simulator-model"


def _config(backends: list[Any], **model_fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(yaml.safe_load(demo_config_text()))
    data["server"]["access_log"] = False
    data["health_checks"] = {"enabled": False}
    for model in data["models"]:
        if model["name"] == MODEL:
            model.update(backends=backends, **model_fields)
    return data


class Backends:
    """Every backend answers requests; ``health`` and ``metrics`` say what each answers to those."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.health: dict[str, int] = {}
        self.metrics: dict[str, str] = {}

    async def __call__(self, request: UpstreamRequest) -> MemoryAnswer:
        target = parse_target(request.url)
        host = target.origin[1]
        if target.path == "/health":
            return MemoryAnswer(self.health.get(host, 200), [], b"")
        if target.path == "/metrics":
            return MemoryAnswer(200, [("content-type", "text/plain")], self.metrics.get(host, "").encode())
        self.sent.append(host)
        return memory_chat_answer()


def _run(config: dict[str, Any], backends: Backends, scenario: Callable[..., Awaitable[None]]) -> None:
    async def main() -> None:
        application = Application(parse_config(config), transport=InMemoryTransport(backends))
        transport = httpx.ASGITransport(app=application.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            await scenario(client, application)

    asyncio.run(main())


async def _chat(client: httpx.AsyncClient, **extra: Any) -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hello"}], **extra}
    response = await client.post("/v1/chat/completions", json=body, headers=KEY)
    assert response.status_code == 200, response.text
    return response


def test_a_backend_is_a_url_or_a_url_with_a_weight() -> None:
    """Both forms load; the admin view shows a backend of weight 1 as the URL it usually is."""
    config = parse_config(_config(["http://a:1/", {"url": "http://b:2", "weight": 3}]))
    model = next(m for m in config.models if m.name == MODEL)
    assert model.backend_urls == ["http://a:1", "http://b:2"]
    assert model.model_dump(mode="json")["backends"] == ["http://a:1/", {"url": "http://b:2/", "weight": 3.0}]
    spec = pool_spec(model, config)
    assert [(b.url, b.weight) for b in spec.backends] == [("http://a:1", 1.0), ("http://b:2", 3.0)]
    assert spec.picker.policy == "least-outstanding"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"fallbacks": ["nowhere"]}, "unknown fallback model 'nowhere'"),
        ({"fallbacks": [MODEL]}, "unknown fallback model 'simulator-model'"),
        ({"fallbacks": ["simulator-embed", "simulator-embed"]}, "fallback 'simulator-embed' is used twice"),
        ({"balancing": "round-robin", "prefix_affinity": {}}, "round robin ignores affinity"),
        ({"balancing": "random"}, "least-outstanding"),
        ({"outlier_detection": {"base_ejection": "10m", "max_ejection": "1m"}}, "must not be longer"),
    ],
)
def test_balancing_settings_that_cannot_work_are_refused(fields: dict[str, Any], message: str) -> None:
    """Unknown or self-naming fallbacks, affinity under round robin, an unknown policy and an ejection
    longer than its cap fail at load time with a message naming the problem."""
    with pytest.raises(ConfigError, match=message):
        parse_config(_config(["http://a:1"], **fields))


def test_a_models_own_health_settings_replace_the_files() -> None:
    """`health_checks` and `outlier_detection` under a model replace the top-level ones; queue-aware
    models get a load scrape at the `queue_aware` interval."""
    data = _config(["http://a:1"], balancing="queue-aware")
    data["health_checks"] = {"interval": "3s"}
    data["outlier_detection"] = {"consecutive_failures": 7}
    data["queue_aware"] = {"scrape_interval": "200ms"}
    data["models"][1]["health_checks"] = {"enabled": False}
    data["models"][1]["outlier_detection"] = {"consecutive_failures": 2}
    config = parse_config(data)
    chat, embed = (pool_spec(model, config) for model in config.models)
    assert chat.health_checks == PollSpec(3.0, 1.0)
    assert chat.health.consecutive_failures == 7
    assert chat.load_scrape == PollSpec(0.2, 1.0)
    assert embed.health_checks is None
    assert embed.health.consecutive_failures == 2
    assert embed.load_scrape is None


def test_a_reload_keeps_what_did_not_change() -> None:
    """A reload that leaves a model alone keeps its backends whole (an ejection stands); one that adds a
    backend keeps the state of those it had, requests in flight included."""
    backends = Backends()

    async def reloads(client: httpx.AsyncClient, application: Application) -> None:
        before = application.current().backends[MODEL]
        kept = before.pool.backends[0]
        for _ in range(5):
            kept.health.passive_failure(FailureKind.CONNECT)
        lease = before.pool.panic_pick()
        assert lease is not None
        changed = _config(["http://a:1"])
        changed["tiers"]["free"]["description"] = "Changed."
        application.apply(parse_config(changed))
        assert application.current().backends[MODEL] is before
        grown = _config(["http://a:1", "http://b:2"])
        application.apply(parse_config(grown))
        after = application.current().backends[MODEL]
        assert after is not before
        assert after.pool.backends[0] is kept
        assert kept.in_flight == 1
        lease.release()
        assert kept.health.state(time.monotonic()) is HealthState.EJECTED
        assert {(await _chat(client)).status_code for _ in range(3)} == {200}
        assert backends.sent == ["b", "b", "b"]

    _run(_config(["http://a:1"]), backends, reloads)


def test_round_robin_follows_the_weights() -> None:
    """Weights 3 and 1 under round robin: three requests to one for every one to the other."""
    backends = Backends()

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        for _ in range(8):
            await _chat(client)
        assert (backends.sent.count("a"), backends.sent.count("b")) == (6, 2)

    config = _config([{"url": "http://a:1", "weight": 3}, "http://b:2"], balancing="round-robin")
    _run(config, backends, scenario)


def test_prefix_affinity_sends_a_system_prompt_to_the_same_backend() -> None:
    """Requests that share a system prompt go to one backend; the backends share the prompts."""
    backends = Backends()

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        chosen = []
        for prompt in [f"You are assistant number {n}." for n in range(8)]:
            sent = len(backends.sent)
            for _ in range(3):
                messages = [{"role": "system", "content": prompt}, {"role": "user", "content": "Hi"}]
                await _chat(client, messages=messages)
            assert len(set(backends.sent[sent:])) == 1, backends.sent[sent:]
            chosen.append(backends.sent[sent])
        assert set(chosen) == {"a", "b", "c"}

    config = _config(["http://a:1", "http://b:2", "http://c:3"], prefix_affinity={"margin": 2})
    _run(config, backends, scenario)


def test_health_checks_take_a_failing_backend_out_and_bring_it_back() -> None:
    """With the gateway started, `/health` is asked in the background: a backend answering 503 is sent
    nothing until it answers 200 again; stopping the gateway stops the checks."""
    backends = Backends()
    backends.health["a"] = 503
    config = _config(["http://a:1", "http://b:2"], balancing="round-robin")
    config["health_checks"] = {"interval": "10ms", "healthy_threshold": 1}

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        await application.start()
        try:
            state = application.current().backends[MODEL].pool.backends[0]
            now = time.monotonic
            await wait_until_async(
                lambda: state.health.state(now()) is HealthState.UNHEALTHY, "a is unhealthy"
            )
            for _ in range(4):
                await _chat(client)
            assert backends.sent == ["b"] * 4
            backends.health["a"] = 200
            await wait_until_async(lambda: state.health.state(now()) is HealthState.HEALTHY, "a is healthy")
            assert application.polling.pollers == 1
        finally:
            await application.stop()
        assert application.polling.pollers == 0

    _run(config, backends, scenario)


def test_a_reload_that_changes_the_polls_restarts_them() -> None:
    """Health checks turned on by a reload start at once; turned off, they stop."""
    backends = Backends()
    backends.health["a"] = 503

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        await application.start()
        try:
            assert application.polling.pollers == 0
            checked = _config(["http://a:1", "http://b:2"])
            checked["health_checks"] = {"interval": "10ms"}
            application.apply(parse_config(checked))
            assert application.polling.pollers == 1
            state = application.current().backends[MODEL].pool.backends[0]
            await wait_until_async(
                lambda: state.health.state(time.monotonic()) is HealthState.UNHEALTHY, "a is out"
            )
            application.apply(parse_config(_config(["http://a:1", "http://b:2"])))
            await asyncio.sleep(0)  # the cancelled loops end at their next step
            assert application.polling.pollers == 0
        finally:
            await application.stop()

    _run(_config(["http://a:1", "http://b:2"]), backends, scenario)


def test_queue_aware_balancing_sends_requests_where_the_queue_is_shortest() -> None:
    """The backends' `/metrics` are scraped in the background; requests go to the backend with the
    least work, and follow when the loads change."""
    backends = Backends()

    def load(waiting: int, running: int) -> str:
        return f"vllm:num_requests_waiting {waiting}\nvllm:num_requests_running {running}\n"

    backends.metrics = {"a": load(8, 16), "b": load(0, 2)}
    config = _config(["http://a:1", "http://b:2"], balancing="queue-aware")
    config["queue_aware"] = {"scrape_interval": "10ms", "stale_after": "5s"}

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        await application.start()
        try:
            pool = application.current().backends[MODEL].pool
            await wait_until_async(
                lambda: all(b.load is not None for b in pool.backends), "both loads are known"
            )
            for _ in range(3):
                await _chat(client)
            assert backends.sent == ["b"] * 3
            backends.metrics = {"a": load(0, 0), "b": load(8, 16)}
            busy = pool.backends[1]
            await wait_until_async(
                lambda: busy.load is not None and busy.load.sample.waiting == 8, "b's new load"
            )
            await _chat(client)
            assert backends.sent[-1] == "a"
        finally:
            await application.stop()

    _run(config, backends, scenario)
