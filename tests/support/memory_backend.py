"""``tests/support/fake_backend.py`` as a handler for ``InMemoryTransport``: the same behaviours, no socket.

The contract tests (tests/test_upstream_contract.py) run the same scenarios against the real process
and this handler, which is what proves the in-memory transport a faithful stand-in.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson

from maas_gateway.upstream import MemoryAnswer, UpstreamRequest
from maas_gateway.upstream.target import parse_target
from tests.support.fake_backend import chat_answer

__all__ = ["MemoryBackend", "memory_chat_answer"]

_JSON = ("content-type", "application/json; charset=utf-8")
_SSE = ("content-type", "text/event-stream")


def _event(text: str) -> bytes:
    choice = {"index": 0, "delta": {"content": text}}
    chunk = {"id": "x", "object": "chat.completion.chunk", "choices": [choice]}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _json(payload: dict[str, Any], status: int = 200) -> MemoryAnswer:
    return MemoryAnswer(status, [_JSON], orjson.dumps(payload))


def memory_chat_answer() -> MemoryAnswer:
    """A whole chat answer whose usage is 7 prompt and 5 completion tokens (12 in all)."""
    return _json(chat_answer("Hi"))


class MemoryBackend:
    """The fake backend's behaviours, chosen by the first path segment; ``last_headers`` as ``/record``."""

    def __init__(self) -> None:
        self.last_headers: dict[str, str] = {}

    async def __call__(self, request: UpstreamRequest) -> MemoryAnswer:
        behaviour = parse_target(request.url).path.split("/")[1]
        if behaviour == "unreachable":
            raise ConnectionRefusedError
        if behaviour == "record":
            self.last_headers = dict(request.headers)
            return _json(chat_answer("recorded"))
        if behaviour == "garbage":
            return MemoryAnswer(200, [("content-type", "text/html; charset=utf-8")], b"<html>not json</html>")
        if behaviour == "error500":
            return _json({"error": {"message": "CUDA out of memory"}}, 500)
        if behaviour == "busy":
            capacity = {"error": {"message": "The server is at capacity.", "code": "busy"}}
            return MemoryAnswer(429, [_JSON, ("retry-after", "3")], orjson.dumps(capacity))
        if behaviour == "error400":
            error = {"object": "error", "message": "This model's maximum context length is 8", "code": 400}
            return _json(error, 400)
        if behaviour == "slow":
            await asyncio.sleep(3)
            return _json(chat_answer("slow"))
        if behaviour == "close":
            raise ConnectionResetError
        if behaviour == "nousage":
            return _json(chat_answer("twelve chars" * 4, usage=False))
        return MemoryAnswer(200, [_SSE], _stream(behaviour))


async def _stream(behaviour: str) -> AsyncIterator[bytes]:
    if behaviour == "stream-stall":
        yield _event("one ")
        yield _event("two ")
        await asyncio.sleep(3)
        yield b"data: [DONE]\n\n"
        return
    if behaviour == "stream-break":
        yield _event("one ")
        yield _event("two ")
        await asyncio.sleep(0.05)
        raise ConnectionResetError
    for word in ("alpha ", "beta ", "gamma"):
        yield _event(word)
    yield b"data: [DONE]\n\n"
