"""A chat backend in the test's own event loop that counts what capacity tests need to see.

It records the order requests arrive in (by their first message's text), counts the requests in
progress and the most there ever were at once, holds every request whose text starts with ``hold``
until ``let_go()``, and answers the others after ``delay`` seconds, with usage. Serve it with
``raw_backend.serving(backend.handle)``; it keeps connections alive as a model server does.
"""

from __future__ import annotations

import asyncio

import orjson

from tests.support.raw_backend import read_request

__all__ = ["HeldBackend"]

_ANSWER = orjson.dumps(
    {
        "id": "chatcmpl-held",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
    }
)
_RESPONSE = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
    + str(len(_ANSWER)).encode()
    + b"\r\n\r\n"
    + _ANSWER
)


class HeldBackend:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.arrivals: list[str] = []
        self.in_progress = 0
        self.most_at_once = 0
        self.held = 0
        self._let_go = asyncio.Event()
        self._holding = asyncio.Condition()

    async def until_held(self, count: int) -> None:
        """Return once ``count`` requests have been held (in all)."""
        async with self._holding:
            await self._holding.wait_for(lambda: self.held >= count)

    def let_go(self) -> None:
        """Answer every held request, and hold none from now on."""
        self._let_go.set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await read_request(reader)) is not None:
            if not request.request_line.startswith("POST"):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")  # /health and the like
                continue
            text = orjson.loads(request.body)["messages"][0]["content"]
            self.arrivals.append(text)
            self.in_progress += 1
            self.most_at_once = max(self.most_at_once, self.in_progress)
            try:
                if text.startswith("hold") and not self._let_go.is_set():
                    async with self._holding:
                        self.held += 1
                        self._holding.notify_all()
                    await self._let_go.wait()
                elif self.delay:
                    await asyncio.sleep(self.delay)
            finally:
                self.in_progress -= 1
            writer.write(_RESPONSE)
            await writer.drain()
