"""Retries, 429s, fallbacks and refunds through the real application over ``InMemoryTransport``.

Each backend is a host name the handler answers for (``http://a:1``, ``http://b:2``, ...), so a test says
what each backend does and counts what each was sent. No socket anywhere; the same rules with real
processes are in tests/test_failover_processes.py.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson
import yaml

from maas_gateway.application import Application
from maas_gateway.config import demo_config_text, parse_config
from maas_gateway.upstream import InMemoryTransport, MemoryAnswer, UpstreamRequest
from maas_gateway.upstream.target import parse_target
from tests.support.memory_backend import memory_chat_answer

USAGE = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
CHAT = {"model": "simulator-model", "messages": [{"role": "user", "content": "Hello"}]}
KEY = {"Authorization": "Bearer enterpriseuser1_key"}
ADMIN_KEY = "an-admin-key-that-is-long-enough-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
Behaviour = Callable[[UpstreamRequest], Awaitable[MemoryAnswer]]
Scenario = Callable[[httpx.AsyncClient, Application], Awaitable[None]]


def _config(backends: list[str], **model_fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(yaml.safe_load(demo_config_text()))
    data["server"]["access_log"] = False
    data["admin"] = {"key_sha256": hashlib.sha256(ADMIN_KEY.encode()).hexdigest()}
    data["health_checks"] = {"enabled": False}
    for model in data["models"]:
        if model["name"] == "simulator-model":
            model.update(backends=backends, **model_fields)
    return data


class Backends:
    """Answers as each backend's behaviour says (a working model when none is set); counts requests."""

    def __init__(self, **behaviours: Behaviour) -> None:
        self.behaviours = behaviours
        self.sent: list[str] = []  # the host of every request, in order

    async def __call__(self, request: UpstreamRequest) -> MemoryAnswer:
        host = parse_target(request.url).origin[1]
        self.sent.append(host)
        behaviour = self.behaviours.get(host)
        return await behaviour(request) if behaviour is not None else memory_chat_answer()

    def count(self, host: str) -> int:
        return self.sent.count(host)


async def _refused(request: UpstreamRequest) -> MemoryAnswer:
    raise ConnectionRefusedError


async def _reset(request: UpstreamRequest) -> MemoryAnswer:
    raise ConnectionResetError


async def _busy(request: UpstreamRequest) -> MemoryAnswer:
    return MemoryAnswer(429, [("content-type", "application/json"), ("retry-after", "7")], b"{}")


def _run(config: dict[str, Any], backends: Backends, scenario: Scenario) -> None:
    async def main() -> None:
        application = Application(parse_config(config), transport=InMemoryTransport(backends))
        transport = httpx.ASGITransport(app=application.asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            await scenario(client, application)

    asyncio.run(main())


async def _chat(client: httpx.AsyncClient, **extra: Any) -> httpx.Response:
    return await client.post("/v1/chat/completions", json={**CHAT, **extra}, headers=KEY)


async def _states(client: httpx.AsyncClient, model: str = "simulator-model") -> dict[str, str]:
    response = await client.get("/admin/models", headers=ADMIN)
    assert response.status_code == 200, response.text
    entry = next(m for m in response.json()["data"] if m["name"] == model)
    return {state["url"]: state["state"] for state in entry["backend_states"]}


def test_a_request_that_cannot_connect_is_sent_once_more_to_another_backend() -> None:
    """A refused connection sent nothing: the request goes to another backend and succeeds; the refusing
    backend is tried no more than the retries need."""
    backends = Backends(a=_refused)

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        for _ in range(6):
            response = await _chat(client)
            assert response.status_code == 200, response.text
            assert response.headers["x-maas-served-model"] == "simulator-model"
        assert backends.count("b") == 6

    _run(_config(["http://a:1", "http://b:2"], balancing="round-robin"), backends, scenario)


def test_a_backend_that_keeps_refusing_is_ejected() -> None:
    """Five failed connections in a row eject the backend (the default outlier detection): from then on
    it is sent nothing, and `/admin/models` says so."""
    backends = Backends(a=_refused)
    config = _config(["http://a:1", "http://b:2"], balancing="round-robin")
    config["retry_budget"] = {"min_retries": 10}  # every failure is retried here

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        for _ in range(12):
            assert (await _chat(client)).status_code == 200
        assert backends.count("a") == 5
        assert await _states(client) == {"http://a:1": "ejected", "http://b:2": "healthy"}
        metrics = application.services.metrics
        assert metrics is not None
        text = metrics.render().decode()
        ejected = 'maas_backend_ejections_total{backend="http://a:1",kind="connect",model="simulator-model"}'
        assert f"{ejected} 1.0" in text
        assert 'maas_backend_retries_total{cause="connect",model="simulator-model"} 5.0' in text

    _run(config, backends, scenario)


def test_a_request_is_never_sent_again_once_a_backend_got_it() -> None:
    """A connection lost after the request was sent (the backend may be generating): 502, one attempt."""
    backends = Backends(a=_reset)

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        response = await _chat(client)
        assert response.status_code == 502
        assert response.json()["error"]["code"] == "backend_unavailable"
        assert response.headers["x-maas-served-model"] == "simulator-model"  # errors say it too
        assert backends.sent == ["a"]

    _run(_config(["http://a:1", "http://b:2"], balancing="round-robin"), backends, scenario)


def test_a_stream_that_breaks_is_never_sent_again() -> None:
    """A stream that started and broke ends with an error event; no other backend is asked."""

    async def breaking(request: UpstreamRequest) -> MemoryAnswer:
        async def events() -> AsyncIterator[bytes]:
            yield b'data: {"choices":[{"index":0,"delta":{"content":"one "}}]}\n\n'
            raise ConnectionResetError

        return MemoryAnswer(200, [("content-type", "text/event-stream")], events())

    backends = Backends(a=breaking)

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        response = await _chat(client, stream=True)
        assert response.status_code == 200
        assert "broke off the stream" in response.text
        assert backends.sent == ["a"]

    _run(_config(["http://a:1", "http://b:2"], balancing="round-robin"), backends, scenario)


def test_retries_stop_when_the_budget_is_spent() -> None:
    """With a budget of one retry per window (no share of requests), the first refused connection is
    retried and the second is a 502; the refusal is counted."""
    backends = Backends(a=_refused)
    config = _config(["http://a:1", "http://b:2"], balancing="round-robin")
    config["retry_budget"] = {"ratio": 0, "min_retries": 1, "window": "1h"}

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        assert (await _chat(client)).status_code == 200  # a, refused, then b
        assert (await _chat(client)).status_code == 200  # b
        refused = await _chat(client)  # a again: no retry left
        assert refused.status_code == 502
        assert backends.sent == ["a", "b", "b", "a"]
        assert application.current().backends["simulator-model"].counts.retries_refused == 1

    _run(config, backends, scenario)


def test_a_backend_at_capacity_hands_the_request_to_another() -> None:
    """A backend's 429 is not the caller's: the request goes to another backend, and the caller is
    charged once."""
    backends = Backends(a=_busy)

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        response = await _chat(client)
        assert response.status_code == 200
        assert backends.sent == ["a", "b"]
        assert response.headers["x-ratelimit-remaining-requests"] == "99"

    _run(_config(["http://a:1", "http://b:2"], balancing="round-robin"), backends, scenario)


def test_when_every_backend_is_at_capacity_the_429_is_passed_on_free_of_charge() -> None:
    """Two busy backends: a 429 with the backend's Retry-After, in OpenAI's shape, and the caller's
    request counter as it was."""
    backends = Backends(a=_busy, b=_busy, c=_busy)

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        busy = await _chat(client)
        assert busy.status_code == 429
        assert busy.headers["retry-after"] == "7"
        assert busy.json()["error"]["code"] == "model_overloaded"
        assert len(backends.sent) == 2  # one retry, no more
        backends.behaviours.clear()
        served = await _chat(client)
        assert served.headers["x-ratelimit-remaining-requests"] == "99"

    _run(_config(["http://a:1", "http://b:2", "http://c:3"], balancing="round-robin"), backends, scenario)


def test_a_failed_request_costs_no_request_quota_and_is_recorded_as_failed() -> None:
    """A 502 gives back the request it was counted as: the remaining requests are what they were, and
    the usage report counts it as failed."""
    backends = Backends(a=_reset)

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        backends.behaviours.clear()
        first = await _chat(client)
        assert first.headers["x-ratelimit-remaining-requests"] == "99"
        backends.behaviours["a"] = _reset
        assert (await _chat(client)).status_code == 502
        backends.behaviours.clear()
        after = await _chat(client)
        assert after.headers["x-ratelimit-remaining-requests"] == "98"
        usage = await client.get("/admin/usage", params={"group_by": "user"}, headers=ADMIN)
        row = next(r for r in usage.json()["data"] if r["user"] == "enterpriseuser1")
        assert (row["requests"], row["failed"], row["total_tokens"]) == (3, 1, 24)

    _run(_config(["http://a:1"]), backends, scenario)


def test_a_model_without_available_backends_is_served_by_its_fallback() -> None:
    """Every backend of the model is ejected: its fallback answers, under the fallback's served name,
    and the answer says which model served it."""
    backends = Backends(a=_refused)
    config = _config(["http://a:1"], fallbacks=["backup"])
    config["models"].append({"name": "backup", "backends": ["http://z:9"], "served_name": "backup-served"})
    config["outlier_detection"] = {"consecutive_failures": 1}

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        first = await _chat(client)  # a refuses and is ejected; the retry goes to the fallback
        assert first.status_code == 200
        assert first.headers["x-maas-served-model"] == "backup"
        second = await _chat(client)
        assert second.headers["x-maas-served-model"] == "backup"
        assert backends.sent == ["a", "z", "z"]
        sent = orjson.loads(application_requests[-1].body)
        assert sent["model"] == "backup-served"

    application_requests: list[UpstreamRequest] = []

    async def recording(request: UpstreamRequest) -> MemoryAnswer:
        application_requests.append(request)
        return memory_chat_answer()

    backends.behaviours["z"] = recording
    _run(config, backends, scenario)


def test_a_fallback_the_caller_may_not_use_is_skipped() -> None:
    """The fallback is closed to the caller's tier: the model's own (ejected) backend is tried anyway
    (panic mode) rather than handing the caller a model they may not use."""
    backends = Backends(a=_refused)
    config = _config(["http://a:1"], fallbacks=["backup"])
    config["models"].append({"name": "backup", "backends": ["http://z:9"], "tiers": ["free"]})
    config["outlier_detection"] = {"consecutive_failures": 1}

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        assert (await _chat(client)).status_code == 502
        assert (await _chat(client)).status_code == 502
        assert backends.sent == ["a", "a"]
        assert application.current().backends["simulator-model"].counts.panic_picks == 1

    _run(config, backends, scenario)


def test_ready_counts_the_models_without_an_available_backend() -> None:
    """`/ready` stays 200 (fallbacks and panic mode can still serve) and says how many models have no
    available backend."""
    backends = Backends(a=_refused)
    config = _config(["http://a:1"])
    config["outlier_detection"] = {"consecutive_failures": 1}

    async def scenario(client: httpx.AsyncClient, application: Application) -> None:
        application.asgi.ready = True
        assert (await client.get("/ready")).json()["models_without_available_backends"] == 0
        assert (await _chat(client)).status_code == 502
        ready = await client.get("/ready")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "models_without_available_backends": 1}

    _run(config, backends, scenario)
