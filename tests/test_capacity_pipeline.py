"""Capacity caps through the real gateway app and pipeline, over ``InMemoryTransport``: what a client
sees when it waits and when it is turned away (OpenAI error bodies, Retry-After), that a stream holds
its slot to its last byte, that the model's tokens per minute are charged from the backend's usage,
the queue metrics, and that caps change on reload.

No socket: the client is httpx's ASGI transport and the backend a function that the test holds back.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson
import yaml

from maas_gateway.application import Application
from maas_gateway.config import demo_config_text, parse_config
from maas_gateway.upstream import InMemoryTransport, MemoryAnswer, UpstreamRequest
from tests.support.polling import wait_until_async

USAGE = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
FREE = {"Authorization": "Bearer freeuser1_key"}
FREE2 = {"Authorization": "Bearer freeuser2_key"}
ENTERPRISE = {"Authorization": "Bearer enterpriseuser1_key"}
Scenario = Callable[[httpx.AsyncClient, Application], Awaitable[None]]


def _config(capacity: dict[str, Any], **settings: Any) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(yaml.safe_load(demo_config_text()))
    data["server"]["access_log"] = False
    data["limits"]["enabled"] = False  # the request windows are not what these tests are about
    data["models"][0]["capacity"] = capacity
    data["capacity"] = {"tier_order": ["enterprise", "premium", "free"], **settings}
    return data


class _Backend:
    """Answers chat requests; a request whose body says ``"hold": true`` waits until ``let_go``."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.events: list[str] = []
        self.held = 0

    async def __call__(self, request: UpstreamRequest) -> MemoryAnswer:
        body = orjson.loads(request.body)
        self.events.append(f"start {body['messages'][0]['content']}")
        if body.get("stream"):
            return MemoryAnswer(200, [("content-type", "text/event-stream")], self._stream(body))
        if body.get("hold"):
            self.held += 1
            await self.release.wait()
        self.events.append(f"end {body['messages'][0]['content']}")
        answer = {
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}}],
            "usage": USAGE,
        }
        return MemoryAnswer(200, [("content-type", "application/json")], orjson.dumps(answer))

    async def _stream(self, body: dict[str, Any]) -> AsyncIterator[bytes]:
        yield b'data: {"choices":[{"index":0,"delta":{"content":"one "}}]}\n\n'
        self.held += 1
        await self.release.wait()
        yield b'data: {"choices":[{"index":0,"delta":{"content":"two"}}]}\n\n'
        yield b'data: {"choices":[],"usage":' + orjson.dumps(USAGE) + b"}\n\n"
        self.events.append(f"end {body['messages'][0]['content']}")
        yield b"data: [DONE]\n\n"


def _run(config: dict[str, Any], scenario: Scenario, backend: _Backend | None = None) -> None:
    async def main() -> None:
        handler = backend or _Backend()
        application = Application(parse_config(config), transport=InMemoryTransport(handler))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=application.asgi), base_url="http://gw")
        async with client:
            await scenario(client, application)
        await application.services.capacity.aclose()

    asyncio.run(asyncio.wait_for(main(), 60))


def _chat(content: str, **extra: Any) -> dict[str, Any]:
    return {"model": "simulator-model", "messages": [{"role": "user", "content": content}], **extra}


def test_a_request_that_finds_the_model_full_waits_then_gets_503_with_retry_after() -> None:
    """One slot, held by a request the backend holds back: the next request waits its queue timeout and
    is answered 503 in OpenAI's error shape, code capacity_exhausted, with Retry-After."""
    backend = _Backend()

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        first = asyncio.create_task(
            client.post("/v1/chat/completions", json=_chat("a", hold=True), headers=FREE)
        )
        await wait_until_async(lambda: backend.held == 1, "the first request at the backend")
        refused = await client.post("/v1/chat/completions", json=_chat("b"), headers=FREE2)
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "capacity_exhausted"
        assert refused.json()["error"]["type"] == "api_error"
        assert "The model 'simulator-model' is at capacity" in refused.json()["error"]["message"]
        assert int(refused.headers["retry-after"]) >= 1
        backend.release.set()
        assert (await first).status_code == 200
        assert backend.events == ["start a", "end a"], "the refused request never reached the backend"

    _run(_config({"max_in_flight": 1}, queue_timeout="100ms"), scenario, backend)


def test_a_tiers_concurrency_limit_answers_429_and_counts_as_a_limited_call() -> None:
    """Free users may have one request at a time: another of the same user waits, then gets 429
    concurrency_limit_exceeded with Retry-After; another user is not held up; `limited_calls` counts it."""
    backend = _Backend()
    data = _config({}, queue_timeout="100ms")
    data["tiers"]["free"]["max_concurrent"] = 1

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        first = asyncio.create_task(
            client.post("/v1/chat/completions", json=_chat("a", hold=True), headers=FREE)
        )
        await wait_until_async(lambda: backend.held == 1, "the first request at the backend")
        other = asyncio.create_task(client.post("/v1/chat/completions", json=_chat("other"), headers=FREE2))
        refused = await client.post("/v1/chat/completions", json=_chat("b"), headers=FREE)
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "concurrency_limit_exceeded"
        assert refused.json()["error"]["type"] == "rate_limit_error"
        assert "retry-after" in refused.headers
        assert (await other).status_code == 200
        backend.release.set()
        assert (await first).status_code == 200
        metrics = application.services.metrics
        assert metrics is not None
        text = metrics.render().decode()
        assert 'limited_calls_total{model="simulator-model",tier="free",user="freeuser1"} 1.0' in text

    _run(data, scenario, backend)


def test_a_stream_holds_its_slot_until_its_last_event() -> None:
    """One slot and a stream in progress: a second request waits and reaches the backend only after the
    stream has ended, then is served; its wait is in the metrics (served, per model and tier)."""
    backend = _Backend()

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        stream = asyncio.create_task(
            client.post("/v1/chat/completions", json=_chat("stream", stream=True), headers=FREE)
        )
        await wait_until_async(lambda: backend.held == 1, "the stream at the backend")
        second = asyncio.create_task(
            client.post("/v1/chat/completions", json=_chat("second"), headers=ENTERPRISE)
        )
        await wait_until_async(
            lambda: application.services.capacity.waiting("simulator-model") == 1, "a request in line"
        )
        metrics = application.services.metrics
        assert metrics is not None
        text = metrics.render().decode()
        assert 'maas_capacity_queue_depth{model="simulator-model",tier="enterprise"} 1.0' in text
        assert 'maas_capacity_in_flight{model="simulator-model"} 1.0' in text
        backend.release.set()
        assert (await stream).status_code == 200
        assert (await second).status_code == 200
        assert backend.events == ["start stream", "end stream", "start second", "end second"]
        text = metrics.render().decode()
        assert 'maas_capacity_queue_depth{model="simulator-model",tier="enterprise"} 0.0' in text
        served = (
            'maas_capacity_wait_seconds_count{model="simulator-model",outcome="served",tier="enterprise"} 1.0'
        )
        assert served in text
        assert 'maas_capacity_in_flight{model="simulator-model"} 0.0' in text

    _run(_config({"max_in_flight": 1}), scenario, backend)


def test_the_models_tokens_per_minute_count_the_backends_usage() -> None:
    """A budget of 20 tokens a minute and answers of 12: two requests pass (the second while 8 are
    left), the third is answered 503 with Retry-After until the minute ends (no waiting: max_queue 0)."""

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        for content in ("a", "b"):
            answer = await client.post("/v1/chat/completions", json=_chat(content), headers=FREE)
            assert answer.status_code == 200
        refused = await client.post("/v1/chat/completions", json=_chat("c"), headers=ENTERPRISE)
        assert refused.status_code == 503
        assert "used its 20 tokens for this minute" in refused.json()["error"]["message"]
        assert 1 <= int(refused.headers["retry-after"]) <= 60

    _run(_config({"tokens_per_minute": 20, "max_queue": 0}), scenario)


def test_caps_change_on_reload() -> None:
    """A reload that removes every cap takes the gate off the request path; one that adds a cap brings it."""

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        assert application.current().capacity is not None
        application.apply(parse_config(_config({})))
        assert application.current().capacity is None
        assert (await client.post("/v1/chat/completions", json=_chat("a"), headers=FREE)).status_code == 200
        application.apply(parse_config(_config({"tokens_per_minute": 1, "max_queue": 0})))
        assert (await client.post("/v1/chat/completions", json=_chat("b"), headers=FREE)).status_code == 200
        assert (await client.post("/v1/chat/completions", json=_chat("c"), headers=FREE)).status_code == 503

    _run(_config({"max_in_flight": 4}), scenario)
