"""Per-backend caps (`{url, max_in_flight}`): a backend at its cap is not picked, requests go to another,
and when every backend is full they wait for room, or get 503 `capacity_exhausted` at their deadline.

The cap counts this process's requests in flight (the pool's own counts): the units are tested with a
fake clock, the behaviour through the real application over ``InMemoryTransport``.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
import yaml

from maas_gateway.application import Application
from maas_gateway.application.policies import pool_spec
from maas_gateway.balancing import BackendPool, BackendState, HealthTracker, RoundRobin, wait_for_room
from maas_gateway.config import ConfigError, demo_config_text, parse_config
from maas_gateway.upstream import InMemoryTransport, MemoryAnswer, UpstreamRequest
from maas_gateway.upstream.target import parse_target
from tests.support.clock import FakeClock
from tests.support.polling import wait_until_async

KEY = {"Authorization": "Bearer enterpriseuser1_key"}
ADMIN_KEY = "an-admin-key-that-is-long-enough-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
USAGE = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
Scenario = Callable[[httpx.AsyncClient, Application], Awaitable[None]]


def _pool(clock: FakeClock, *caps: int | None) -> BackendPool:
    backends = [
        BackendState(f"http://vllm-{n}:8000", health=HealthTracker(clock=clock), max_in_flight=cap)
        for n, cap in enumerate(caps)
    ]
    return BackendPool(backends, RoundRobin(), clock=clock)


def test_a_backend_at_its_cap_is_not_picked_and_a_full_pool_picks_nothing() -> None:
    """`pick` leaves out a backend whose requests in flight reach its cap; when all are full, `pick` and
    `panic_pick` both return None (a cap is not broken even in panic mode), and a release makes room."""
    clock = FakeClock()
    pool = _pool(clock, 1, 2)
    capped, roomy = pool.backends
    leases = [pool.pick() for _ in range(3)]
    assert [lease.backend if lease else None for lease in leases] == [capped, roomy, roomy]
    assert (capped.has_room(), roomy.has_room()) == (False, False)
    assert pool.pick() is None
    assert pool.panic_pick() is None
    assert pool.panics == 0, "a panic pick that found nothing is not counted"
    first = leases[0]
    assert first is not None
    first.release()
    again = pool.pick()
    assert again is not None
    assert again.backend is capped


def test_a_cap_below_one_is_refused_when_the_backend_is_built() -> None:
    """A cap of 0 could never serve anything: the unit refuses it with a sentence naming the backend."""
    with pytest.raises(ValueError, match=r"max_in_flight must be at least 1, not 0 \(http://x:1\)"):
        BackendState("http://x:1", max_in_flight=0)


def test_waiting_for_room_ends_when_a_request_ends_or_at_the_deadline() -> None:
    """`wait_for_room` returns True once one of the backends ends a request, and False when its deadline
    passes first; it leaves no waiter behind on the backends."""

    async def main() -> None:
        clock = FakeClock()
        pool = _pool(clock, 1)
        lease = pool.pick()
        assert lease is not None
        loop = asyncio.get_running_loop()
        waiting = asyncio.create_task(wait_for_room(pool.backends, loop.time() + 60))
        await asyncio.sleep(0)
        assert not waiting.done()
        lease.release()
        assert await waiting is True
        assert await wait_for_room(pool.backends, loop.time() + 0.01) is False
        assert await wait_for_room(pool.backends, loop.time() - 1) is False

    asyncio.run(main())


def _config(backends: list[Any], **capacity: Any) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(yaml.safe_load(demo_config_text()))
    data["server"]["access_log"] = False
    data["limits"]["enabled"] = False
    data["admin"] = {"key_sha256": hashlib.sha256(ADMIN_KEY.encode()).hexdigest()}
    data["health_checks"] = {"enabled": False}
    data["capacity"] = capacity
    for model in data["models"]:
        if model["name"] == "simulator-model":
            model.update(backends=backends, balancing="round-robin")
    return data


class _Held:
    """Answers every request; one whose first message is "hold" waits until ``let_go`` is set."""

    def __init__(self) -> None:
        self.let_go = asyncio.Event()
        self.sent: list[str] = []  # "<host> <content>" of every request, in order
        self.holding = 0

    async def __call__(self, request: UpstreamRequest) -> MemoryAnswer:
        content = orjson.loads(request.body)["messages"][0]["content"]
        self.sent.append(f"{parse_target(request.url).origin[1]} {content}")
        if content == "hold":
            self.holding += 1
            await self.let_go.wait()
        answer = {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}}],
            "usage": USAGE,
        }
        return MemoryAnswer(200, [("content-type", "application/json")], orjson.dumps(answer))


def _run(config: dict[str, Any], backend: _Held, scenario: Scenario) -> None:
    async def main() -> None:
        application = Application(parse_config(config), transport=InMemoryTransport(backend))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=application.asgi), base_url="http://gw")
        async with client:
            await scenario(client, application)

    asyncio.run(asyncio.wait_for(main(), 60))


async def _chat(client: httpx.AsyncClient, content: str) -> httpx.Response:
    body = {"model": "simulator-model", "messages": [{"role": "user", "content": content}]}
    return await client.post("/v1/chat/completions", json=body, headers=KEY)


def test_requests_skip_a_backend_at_its_cap() -> None:
    """Round robin would send every other request to `a`; with `a` holding its one allowed request, the
    others go to `b`, and `/admin/models` shows each backend's cap."""
    backend = _Held()

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        held = asyncio.create_task(_chat(client, "hold"))
        await wait_until_async(lambda: backend.holding == 1, "the held request at a backend")
        assert backend.sent == ["a hold"]
        for n in range(3):
            assert (await _chat(client, f"quick {n}")).status_code == 200
        assert backend.sent == ["a hold", "b quick 0", "b quick 1", "b quick 2"]
        models = (await client.get("/admin/models", headers=ADMIN)).json()["data"]
        states = next(m for m in models if m["name"] == "simulator-model")["backend_states"]
        assert [(s["url"], s["max_in_flight"], s["in_flight"]) for s in states] == [
            ("http://a:1", 1, 1),
            ("http://b:2", None, 0),
        ]
        backend.let_go.set()
        assert (await held).status_code == 200

    _run(_config([{"url": "http://a:1", "max_in_flight": 1}, "http://b:2"]), backend, scenario)


def test_when_every_backend_is_full_a_request_waits_and_is_served_when_one_ends() -> None:
    """Both backends hold their one allowed request: the third is not sent anywhere until one of them
    ends, then it is served by the backend that made room."""
    backend = _Held()
    caps = [{"url": "http://a:1", "max_in_flight": 1}, {"url": "http://b:2", "max_in_flight": 1}]

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        held = [asyncio.create_task(_chat(client, "hold")) for _ in range(2)]
        await wait_until_async(lambda: backend.holding == 2, "both held requests at their backends")
        waiting = asyncio.create_task(_chat(client, "waits"))
        backends = application.current().backends["simulator-model"]
        await wait_until_async(lambda: backends.waiting_for_room == 1, "the third request waiting for room")
        assert sorted(backend.sent) == ["a hold", "b hold"], "nothing was sent past a cap"
        backend.let_go.set()
        assert [(await task).status_code for task in held] == [200, 200]
        served = await waiting
        assert served.status_code == 200, served.text
        assert backend.sent[-1] in {"a waits", "b waits"}
        assert (backends.counts.room_waits, backends.counts.room_timeouts) == (1, 0)

    _run(_config(caps, queue_timeout="30s"), backend, scenario)


def test_a_request_that_finds_no_room_by_its_deadline_gets_503_with_retry_after() -> None:
    """The one backend holds its one allowed request: the next waits the queue timeout and is answered
    503 `capacity_exhausted` in OpenAI's shape with Retry-After, without reaching the backend, and the
    metrics count the wait and the refusal."""
    backend = _Held()

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        held = asyncio.create_task(_chat(client, "hold"))
        await wait_until_async(lambda: backend.holding == 1, "the held request at the backend")
        refused = await _chat(client, "too many")
        assert refused.status_code == 503
        error = refused.json()["error"]
        assert (error["code"], error["type"]) == ("capacity_exhausted", "api_error")
        assert error["message"] == (
            "Every backend of the model 'simulator-model' has as many requests in progress as it may take: "
            "none came free while this request waited 0.1 seconds. Try again in 1 seconds."
        )
        assert refused.headers["retry-after"] == "1"
        assert backend.sent == ["a hold"]
        counts = application.current().backends["simulator-model"].counts
        assert (counts.room_waits, counts.room_timeouts) == (1, 1)
        metrics = application.services.metrics
        assert metrics is not None
        text = metrics.render().decode()
        assert 'maas_backend_room_waits_total{model="simulator-model"} 1.0' in text
        assert 'maas_backend_room_timeouts_total{model="simulator-model"} 1.0' in text
        backend.let_go.set()
        assert (await held).status_code == 200

    _run(_config([{"url": "http://a:1", "max_in_flight": 1}], queue_timeout="100ms"), backend, scenario)


def test_a_backends_cap_must_be_at_least_one_and_reaches_the_pool_spec() -> None:
    """`max_in_flight: 0` is refused with the field named; a valid cap reaches the backend's plain spec,
    and the wait for room takes the model's queue settings (its own, else the file's)."""
    data = _config([{"url": "http://a:1", "max_in_flight": 0}])
    with pytest.raises(ConfigError, match="max_in_flight"):
        parse_config(data)
    data = _config([{"url": "http://a:1", "max_in_flight": 4}, "http://b:2"], max_queue=7, queue_timeout="3s")
    config = parse_config(data)
    model = next(m for m in config.models if m.name == "simulator-model")
    spec = pool_spec(model, config)
    assert [(b.url, b.max_in_flight) for b in spec.backends] == [("http://a:1", 4), ("http://b:2", None)]
    assert (spec.room.max_waiting, spec.room.timeout) == (7, 3.0)
    shown = model.model_dump(mode="json")["backends"]
    assert shown == [{"url": "http://a:1/", "weight": 1.0, "max_in_flight": 4}, "http://b:2/"]


def test_a_full_available_backend_is_waited_for_rather_than_one_that_is_out() -> None:
    """`a` is healthy and full, `b` has room but is unhealthy: the request waits for `a` (panic mode is
    for when nothing is available, not for when what is available is busy) and is refused at its
    deadline without reaching `b`."""
    backend = _Held()

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        out = application.current().backends["simulator-model"].pool.backends[1]
        out.health.active_result(False, "The health check answered HTTP 503.")
        held = asyncio.create_task(_chat(client, "hold"))
        await wait_until_async(lambda: backend.holding == 1, "the held request at the backend")
        refused = await _chat(client, "too many")
        assert refused.status_code == 503
        assert backend.sent == ["a hold"]
        backend.let_go.set()
        assert (await held).status_code == 200

    caps = [{"url": "http://a:1", "max_in_flight": 1}, "http://b:2"]
    _run(_config(caps, queue_timeout="100ms"), backend, scenario)


def test_with_max_queue_zero_a_request_that_finds_every_backend_full_is_refused_at_once() -> None:
    """`max_queue: 0` lets nobody wait: the answer is 503 at once, saying that requests do not wait, and
    it counts as refused but not as having waited."""
    backend = _Held()

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        held = asyncio.create_task(_chat(client, "hold"))
        await wait_until_async(lambda: backend.holding == 1, "the held request at the backend")
        refused = await _chat(client, "too many")
        assert refused.status_code == 503
        assert "requests do not wait" in refused.json()["error"]["message"]
        assert refused.headers["retry-after"] == "30"
        counts = application.current().backends["simulator-model"].counts
        assert (counts.room_waits, counts.room_timeouts) == (0, 1), "refused at once: it did not wait"
        backend.let_go.set()
        assert (await held).status_code == 200

    caps = [{"url": "http://a:1", "max_in_flight": 1}]
    _run(_config(caps, max_queue=0, queue_timeout="30s"), backend, scenario)
