"""A real HTTP backend that misbehaves on purpose, chosen by the first path segment of its base URL.

The gateway appends the OpenAI path to a backend URL, so a model whose backend is
``http://127.0.0.1:PORT/garbage`` receives ``POST /garbage/v1/chat/completions`` here. Behaviours:

- ``record``: answers like a model and remembers the request headers (``GET /record/last``) and the
  body's model, max_tokens, stream_options and message count (``GET /record/body``).
- ``garbage``: 200 with a body that is not JSON.     - ``error500`` / ``error400``: backend errors.
- ``slow``: answers after 3 seconds.                  - ``close``: drops the connection.
- ``nousage``: a valid answer without ``usage``.      - ``stream-break``: two SSE events, then drops.
- ``stream-nousage``: an SSE answer that never reports usage.
- ``stream-stall``: two SSE events, then silence for 3 seconds before the rest.
- ``busy``: 429 with ``Retry-After: 3``, as a model server at capacity answers.
- ``batch``: a completion as vLLM answers it: one choice per prompt of a list times ``n`` (or
  ``best_of``), each ``max_tokens`` tokens long (16 without one), with usage counting them all.

``GET /{behaviour}/health`` answers 200, as a model server's ``/health`` does for the gateway's checks.

``GET /peers`` lists the client port of every request so far, which shows whether connections are reused.

Run as ``python fake_backend.py PORT``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson
from aiohttp import web

_last_headers: dict[str, str] = {}
_last_body: dict[str, Any] = {}  # the recorded request's model, max_tokens, stream_options, message count
_counts: dict[str, int] = {}
_peers: list[int] = []


def chat_answer(content: str, usage: bool = True) -> dict[str, Any]:
    """A chat completion as a model server answers it (shared with ``memory_backend``)."""
    body: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": "fake",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
    return body


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def _chunk(text: str) -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": {"content": text}}],
    }


async def handle(request: web.Request) -> web.StreamResponse:
    behaviour = request.match_info["behaviour"]
    _counts[behaviour] = _counts.get(behaviour, 0) + 1
    peer = request.transport.get_extra_info("peername") if request.transport is not None else None
    _peers.append(peer[1] if peer else 0)
    raw = await request.read()
    if behaviour == "record":
        _last_headers.clear()
        _last_headers.update({k.lower(): v for k, v in request.headers.items()})
        body = orjson.loads(raw) if raw else {}
        _last_body.clear()
        _last_body.update({name: body.get(name) for name in ("model", "max_tokens", "stream_options")})
        _last_body["messages"] = len(body.get("messages") or [])
        return web.json_response(chat_answer("recorded"))
    if behaviour == "garbage":
        return web.Response(body=b"<html>not json</html>", content_type="text/html")
    if behaviour == "error500":
        return web.json_response({"error": {"message": "CUDA out of memory"}}, status=500)
    if behaviour == "busy":
        capacity = {"error": {"message": "The server is at capacity.", "code": "busy"}}
        return web.json_response(capacity, status=429, headers={"retry-after": "3"})
    if behaviour == "error400":
        error = {"object": "error", "message": "This model's maximum context length is 8", "code": 400}
        return web.json_response(error, status=400)
    if behaviour == "slow":
        await asyncio.sleep(3)
        return web.json_response(chat_answer("slow"))
    if behaviour == "close":
        assert request.transport is not None
        request.transport.close()
        return web.Response()
    if behaviour == "batch":
        return web.json_response(_batch_answer(orjson.loads(raw)))
    if behaviour == "nousage":
        return web.json_response(chat_answer("twelve chars" * 4, usage=False))
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    if behaviour == "stream-stall":
        await response.write(_event(_chunk("one ")))
        await response.write(_event(_chunk("two ")))
        await asyncio.sleep(3)
        await response.write(b"data: [DONE]\n\n")
        return response
    if behaviour == "stream-break":
        await response.write(_event(_chunk("one ")))
        await response.write(_event(_chunk("two ")))
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.close()
        return response
    # stream-nousage
    for word in ("alpha ", "beta ", "gamma"):
        await response.write(_event(_chunk(word)))
    await response.write(b"data: [DONE]\n\n")
    return response


def _batch_answer(body: dict[str, Any]) -> dict[str, Any]:
    """What vLLM answers a completion request: every prompt of a batch gets its ``n`` answers, each
    generating up to ``max_tokens`` tokens (here: exactly that many), one prompt token per prompt."""
    prompt = body.get("prompt")
    prompts = 1
    if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int):
        prompts = len(prompt)
    answers = prompts * max(body.get("n") or 1, body.get("best_of") or 1)
    tokens = body.get("max_tokens") or 16
    choices = [{"index": index, "text": "x" * tokens, "finish_reason": "length"} for index in range(answers)]
    usage = {
        "prompt_tokens": prompts,
        "completion_tokens": answers * tokens,
        "total_tokens": prompts + answers * tokens,
    }
    return {
        "id": "cmpl-batch",
        "object": "text_completion",
        "model": "fake",
        "choices": choices,
        "usage": usage,
    }


async def last(request: web.Request) -> web.Response:
    return web.json_response(_last_headers)


async def last_body(request: web.Request) -> web.Response:
    return web.json_response(_last_body)


async def counts(request: web.Request) -> web.Response:
    return web.json_response(_counts)


async def peers(request: web.Request) -> web.Response:
    return web.json_response(_peers)


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    app = web.Application(client_max_size=64 * 1024 * 1024)  # big-body tests send 10 MB
    app.router.add_get("/health", health)
    app.router.add_get("/{behaviour}/health", health)
    app.router.add_get("/record/last", last)
    app.router.add_get("/record/body", last_body)
    app.router.add_get("/counts", counts)
    app.router.add_get("/peers", peers)
    app.router.add_post("/{behaviour}/v1/{tail:.*}", handle)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)


if __name__ == "__main__":
    main()
