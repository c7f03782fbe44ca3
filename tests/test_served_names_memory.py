"""A model's served name mapped back to its public name, byte by byte, over ``InMemoryTransport``.

The backend is a function writing exactly the bytes each case needs (spacing, escapes, events cut in
two), which a real model server would not vary on request; the real simulator and the OpenAI SDK are in
tests/test_served_names.py.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import yaml

from maas_gateway.application import Application
from maas_gateway.config import demo_config_text, parse_config
from maas_gateway.upstream import InMemoryTransport, MemoryAnswer, UpstreamRequest

KEY = {"Authorization": "Bearer premiumuser1_key"}
JSON = [("content-type", "application/json")]
SSE = [("content-type", "text/event-stream")]
MESSAGES = [{"role": "user", "content": "Hello"}]


def _post(served: str, answer: MemoryAnswer, **body: Any) -> tuple[httpx.Response, dict[str, Any]]:
    """One request for the model ``public-name`` (served as ``served``); the answer and what the backend
    was sent."""
    data: dict[str, Any] = copy.deepcopy(yaml.safe_load(demo_config_text()))
    data["server"]["access_log"] = False
    data["limits"]["enabled"] = False
    data["models"].append({"name": "public-name", "served_name": served, "backends": ["http://backend:8000"]})
    sent: dict[str, Any] = {}

    async def handler(request: UpstreamRequest) -> MemoryAnswer:
        sent.update(orjson.loads(request.body))
        return answer

    async def main() -> httpx.Response:
        app = Application(parse_config(data), transport=InMemoryTransport(handler)).asgi
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            request = {"model": body.pop("model", "public-name"), "messages": MESSAGES, **body}
            return await client.post("/v1/chat/completions", json=request, headers=KEY)

    return asyncio.run(main()), sent


def _completion(model: str, content: str = "Hi!") -> dict[str, Any]:
    message = {"role": "assistant", "content": content}
    return {"id": "c1", "object": "chat.completion", "model": model, "choices": [{"message": message}]}


def _chunk(model: str, content: str) -> dict[str, Any]:
    choice = {"index": 0, "delta": {"content": content}}
    return {"id": "c1", "object": "chat.completion.chunk", "model": model, "choices": [choice]}


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _data(response: httpx.Response) -> list[dict[str, Any]]:
    """The JSON of each `data:` event of a streamed answer, `[DONE]` left out."""
    lines = response.content.split(b"\n\n")
    return [orjson.loads(line[6:]) for line in lines if line.startswith(b"data: {")]


@pytest.mark.parametrize(
    "encode",
    [
        orjson.dumps,  # vLLM's pydantic, serde, llama.cpp: no spaces, non-ASCII raw
        lambda payload: json.dumps(payload).encode(),  # Python's json: spaces, \u escapes
        lambda payload: json.dumps(payload, separators=(" , ", " : ")).encode(),  # no writer does this
        lambda payload: json.dumps(payload).replace("/", "\\/").encode(),  # PHP and friends escape "/"
    ],
)
def test_a_whole_answer_names_the_public_model_however_it_is_written(encode: Any) -> None:
    """The backend is sent the served name and its answer's `model` comes back as the public name,
    whatever the JSON's spacing and escapes; the rest of the answer is unchanged."""
    served = "org/modèle-7b"
    response, sent = _post(served, MemoryAnswer(200, JSON, encode(_completion(served))))
    assert sent["model"] == served
    assert response.status_code == 200, response.text
    assert response.json() == _completion("public-name")


def test_a_model_without_a_served_name_is_passed_byte_for_byte() -> None:
    """Without a `served_name` nothing is rewritten: odd spacing survives, a backend's own name too."""
    body = b'{"model" : "simulator-model", "note": "model simulator-model", "choices": []}'
    response, _ = _post("public-name", MemoryAnswer(200, JSON, body))
    assert response.content == body
    other = b'{"model":"something-else","choices":[]}'
    assert _post("public-name", MemoryAnswer(200, JSON, other))[0].content == other


def test_every_stream_chunk_names_the_public_model() -> None:
    """Each event's `model` is mapped back, compact or spaced, raw or \\u-escaped, and also when the
    transport cuts an event in the middle of the name."""
    served = "modèle-interne"
    first = b"data: " + orjson.dumps(_chunk(served, "alpha ")) + b"\n\n"
    cut = len(b'data: {"id":"c1","object":"chat.completion.chunk","model":"mod')
    stream = _chunks(
        first[:cut],
        first[cut:] + b"data: " + json.dumps(_chunk(served, "beta ")).encode() + b"\n\n",
        b"data: " + json.dumps(_chunk(served, "gamma"), ensure_ascii=False).encode() + b"\n\n",
        b"data: " + orjson.dumps({"model": served, "choices": [], "usage": {"prompt_tokens": 1}}) + b"\n\n",
        b"data: [DONE]\n\n",
    )
    response, _ = _post(served, MemoryAnswer(200, SSE, stream), stream=True)
    assert response.status_code == 200
    events = _data(response)
    assert [event["model"] for event in events] == ["public-name"] * 3
    assert "".join(event["choices"][0]["delta"]["content"] for event in events) == "alpha beta gamma"
    assert served.encode() not in response.content
    assert b"mod\\u00e8le" not in response.content
    assert response.content.endswith(b"data: [DONE]\n\n")


def test_a_served_name_is_not_mapped_inside_a_longer_name() -> None:
    """A served name that begins another name leaves that name alone, in streams and whole answers."""
    stream = _chunks(
        b"data: " + orjson.dumps(_chunk("internal", "a")) + b"\n\n",
        b"data: " + orjson.dumps(_chunk("internal-2", "b")) + b"\n\n",
    )
    response, _ = _post("internal", MemoryAnswer(200, SSE, stream), stream=True)
    assert [event["model"] for event in _data(response)] == ["public-name", "internal-2"]
    whole = orjson.dumps(_completion("internal-2"))
    assert _post("internal", MemoryAnswer(200, JSON, whole))[0].content == whole


def test_generated_text_is_never_rewritten() -> None:
    """A model's output that mentions its served name, even as the JSON of a `model` field, is the
    client's text and arrives as generated."""
    text = 'I am internal-name; {"model":"internal-name"} and {"model": "internal-name"}'
    stream = _chunks(b"data: " + orjson.dumps(_chunk("internal-name", text)) + b"\n\n")
    streamed, _ = _post("internal-name", MemoryAnswer(200, SSE, stream), stream=True)
    assert _data(streamed)[0]["choices"][0]["delta"]["content"] == text
    whole, _ = _post(
        "internal-name", MemoryAnswer(200, JSON, orjson.dumps(_completion("internal-name", text)))
    )
    assert whole.json()["choices"][0]["message"]["content"] == text
    assert whole.json()["model"] == "public-name"


@pytest.mark.parametrize(
    ("status", "shown"),
    [(400, 400), (404, 404), (500, 502), (503, 502)],
)
def test_a_backends_error_never_shows_the_served_name(status: int, shown: int) -> None:
    """A backend's 4xx passed on, and its 5xx reported by the gateway, name the public model only."""
    error = {"message": "The model `org/internal` does not exist.", "code": "org/internal_missing"}
    answer = MemoryAnswer(status, JSON, orjson.dumps({"error": error}))
    for stream in (False, True):
        response, _ = _post("org/internal", answer, stream=stream)
        assert response.status_code == shown
        assert b"internal" not in response.content
        assert "The model `public-name` does not exist" in response.json()["error"]["message"]


def test_an_error_event_in_a_stream_never_shows_the_served_name() -> None:
    """An error a backend reports inside a stream (vLLM writes it with Python's json) names the public
    model; the events before it are relayed as usual."""
    error = {"error": {"object": "error", "message": "internal-name: engine dead", "code": 500}}
    stream = _chunks(
        b"data: " + orjson.dumps(_chunk("internal-name", "one ")) + b"\n\n",
        b"data: " + json.dumps(error).encode() + b"\n\n",
    )
    response, _ = _post("internal-name", MemoryAnswer(200, SSE, stream), stream=True)
    events = _data(response)
    assert events[0]["model"] == "public-name"
    assert events[1]["error"]["message"] == "public-name: engine dead"
    assert b"internal-name" not in response.content
