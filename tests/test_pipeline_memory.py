"""The real gateway app and pipeline over ``InMemoryTransport``: charging, refunds, streams, headers.

No socket anywhere: the client is httpx's ASGI transport and the backend a function, so these run in
milliseconds. That the in-memory transport behaves like the real one is tests/test_upstream_contract.py.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
import yaml

from maas_gateway.application import Application
from maas_gateway.config import demo_config_text, parse_config
from maas_gateway.upstream import InMemoryTransport, MemoryAnswer, UpstreamRequest

USAGE = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
KEY = {"Authorization": "Bearer reserveuser_key"}
Scenario = Callable[[httpx.AsyncClient, InMemoryTransport], Awaitable[None]]
Handler = Callable[[UpstreamRequest], Awaitable[MemoryAnswer]]


def _config() -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(yaml.safe_load(demo_config_text()))
    data["server"]["access_log"] = False
    data["tiers"]["reserving"] = {
        "limits": [{"limit": 10_000, "unit": "tokens", "window": "1h"}],
        "reserve": True,
        "reserve_default_max_tokens": 100,
    }
    data["api_keys"].append({"user": "reserveuser", "tier": "reserving", "key": "reserveuser_key"})
    return data


def _run(handler: Handler, scenario: Scenario) -> None:
    async def main() -> None:
        transport = InMemoryTransport(handler)
        app = Application(parse_config(_config()), transport=transport).asgi
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
        async with client:
            await scenario(client, transport)

    asyncio.run(main())


def _chat(**extra: Any) -> dict[str, Any]:
    return {"model": "simulator-model", "messages": [{"role": "user", "content": "Hello"}], **extra}


def _answer(usage: dict[str, int] | None = USAGE) -> MemoryAnswer:
    body: dict[str, Any] = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}}]}
    if usage is not None:
        body["usage"] = usage
    return MemoryAnswer(200, [("content-type", "application/json")], orjson.dumps(body))


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def _stream_with_usage() -> AsyncIterator[bytes]:
    for word in ("alpha ", "beta"):
        yield _event({"choices": [{"index": 0, "delta": {"content": word}}]})
    yield _event({"choices": [], "usage": USAGE})
    yield b"data: [DONE]\n\n"


async def _remaining(client: httpx.AsyncClient) -> int:
    response = await client.post("/v1/chat/completions", json=_chat(), headers=KEY)
    assert response.status_code == 200, response.text
    return int(response.headers["x-ratelimit-remaining-tokens"])


def test_the_backends_usage_is_charged() -> None:
    async def handler(request: UpstreamRequest) -> MemoryAnswer:
        return _answer()

    async def scenario(client: httpx.AsyncClient, transport: InMemoryTransport) -> None:
        response = await client.post("/v1/chat/completions", json=_chat(), headers=KEY)
        assert response.status_code == 200
        assert response.headers["x-ratelimit-consumed-tokens"] == "12"
        assert await _remaining(client) == 10_000 - 24

    _run(handler, scenario)


@pytest.mark.parametrize(
    ("failure", "status"),
    [(ConnectionResetError(), 502), (ConnectionRefusedError(), 502), (TimeoutError(), 504)],
)
def test_a_failed_backend_costs_nothing_and_its_reservation_is_given_back(
    failure: OSError, status: int
) -> None:
    """The tier reserves each request's worst case first; a backend failure gives all of it back."""
    calls = 0

    async def handler(request: UpstreamRequest) -> MemoryAnswer:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise failure
        return _answer()

    async def scenario(client: httpx.AsyncClient, transport: InMemoryTransport) -> None:
        before = await _remaining(client)
        failed = await client.post("/v1/chat/completions", json=_chat(), headers=KEY)
        assert failed.status_code == status
        assert await _remaining(client) == before - 12

    _run(handler, scenario)


def test_a_backend_5xx_costs_nothing() -> None:
    calls = 0

    async def handler(request: UpstreamRequest) -> MemoryAnswer:
        nonlocal calls
        calls += 1
        if calls == 2:
            return MemoryAnswer(500, [("content-type", "application/json")], b'{"error":{"message":"OOM"}}')
        return _answer()

    async def scenario(client: httpx.AsyncClient, transport: InMemoryTransport) -> None:
        before = await _remaining(client)
        failed = await client.post("/v1/chat/completions", json=_chat(), headers=KEY)
        assert failed.status_code == 502
        assert "OOM" in failed.json()["error"]["message"]
        assert await _remaining(client) == before - 12

    _run(handler, scenario)


def test_a_stream_asks_for_usage_charges_it_and_hides_the_usage_chunk() -> None:
    """The client did not ask for usage: the backend is asked anyway, and its usage chunk is dropped."""

    async def handler(request: UpstreamRequest) -> MemoryAnswer:
        if orjson.loads(request.body).get("stream"):
            return MemoryAnswer(200, [("content-type", "text/event-stream")], _stream_with_usage())
        return _answer()

    async def scenario(client: httpx.AsyncClient, transport: InMemoryTransport) -> None:
        before = await _remaining(client)
        response = await client.post("/v1/chat/completions", json=_chat(stream=True), headers=KEY)
        assert response.status_code == 200
        sent = orjson.loads(transport.requests[-1].body)
        assert sent["stream_options"] == {"include_usage": True}
        assert '"alpha "' in response.text
        assert '"usage"' not in response.text
        assert response.text.rstrip().endswith("data: [DONE]")
        assert await _remaining(client) == before - 12 - 12

    _run(handler, scenario)


def test_a_stream_shows_the_usage_chunk_when_the_client_asks_for_it() -> None:
    async def handler(request: UpstreamRequest) -> MemoryAnswer:
        return MemoryAnswer(200, [("content-type", "text/event-stream")], _stream_with_usage())

    async def scenario(client: httpx.AsyncClient, transport: InMemoryTransport) -> None:
        body = _chat(stream=True, stream_options={"include_usage": True})
        response = await client.post("/v1/chat/completions", json=body, headers=KEY)
        assert '"usage"' in response.text

    _run(handler, scenario)


def test_credentials_and_forged_identity_never_reach_the_backend() -> None:
    async def handler(request: UpstreamRequest) -> MemoryAnswer:
        return _answer()

    async def scenario(client: httpx.AsyncClient, transport: InMemoryTransport) -> None:
        forged = {
            **KEY,
            "Cookie": "session=secret",
            "X-MaaS-User": "admin",
            "X-MaaS-Tier": "enterprise",
            "X-Forwarded-User": "root",
            "X-Custom": "kept",
        }
        response = await client.post("/v1/chat/completions", json=_chat(), headers=forged)
        assert response.status_code == 200
        seen = dict(transport.requests[-1].headers)
        assert seen["x-maas-user"] == "reserveuser"
        assert seen["x-maas-tier"] == "reserving"
        assert seen["x-custom"] == "kept"
        assert seen["x-request-id"] == response.headers["x-request-id"]
        for name in ("authorization", "cookie", "x-forwarded-user"):
            assert name not in seen, name

    _run(handler, scenario)


def test_the_backend_cannot_set_the_gateways_own_response_headers() -> None:
    async def handler(request: UpstreamRequest) -> MemoryAnswer:
        answer = _answer()
        answer.headers = [
            ("content-type", "application/json"),
            ("x-ratelimit-remaining-tokens", "999999"),
            ("x-request-id", "forged"),
            ("retry-after", "3600"),
            ("connection", "close"),
            ("x-backend-version", "0.9"),
        ]
        return answer

    async def scenario(client: httpx.AsyncClient, transport: InMemoryTransport) -> None:
        response = await client.post("/v1/chat/completions", json=_chat(), headers=KEY)
        assert response.status_code == 200
        assert response.headers["x-request-id"] != "forged"
        assert response.headers["x-ratelimit-remaining-tokens"] != "999999"
        assert "retry-after" not in response.headers
        assert response.headers.get("connection") != "close"
        assert response.headers["x-backend-version"] == "0.9"

    _run(handler, scenario)
