"""One request and its answer on a backend connection: the parser's callbacks, the body, the read timeout.

A new ``BackendExchange`` is made for every request, so nothing of one answer can leak into the next; it
is the httptools parser's protocol, so the parser's callbacks write straight into it (the parser itself
is kept by the connection). The connection it
runs on (``backend_connection.BackendConnection``) owns the socket and its lifecycle.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from maas_gateway.errors import BackendTimeoutError, GatewayError
from maas_gateway.upstream.connection_state import DONE, RECEIVING

if TYPE_CHECKING:
    from maas_gateway.upstream.backend_connection import BackendConnection

__all__ = ["BackendExchange"]

_PAUSE_AT = 1024 * 1024  # stop reading from a backend while this much is waiting for a slow client


class BackendExchange:
    """What the backend has answered to one request so far; ``head`` completes with its status line."""

    __slots__ = (
        "buffered",
        "chunks",
        "complete",
        "connection",
        "error",
        "got_bytes",
        "head",
        "headers",
        "interim",
        "keep_alive",
        "loop",
        "read_timeout",
        "status",
        "timer",
        "until_close",
        "waiter",
        "waiting_since",
    )

    def __init__(self, connection: BackendConnection, read_timeout: float) -> None:
        loop = self.loop = connection.loop
        self.connection = connection
        self.head: asyncio.Future[None] = loop.create_future()
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []  # a list: cheaper to make than a deque, and only ever emptied whole
        self.buffered = 0
        self.complete = False  # the whole body arrived (it may not all have been read yet)
        self.error: GatewayError | None = None
        self.got_bytes = False  # whether the backend answered anything (a failed reuse is retried if not)
        self.keep_alive = False
        self.until_close = False  # a body with neither length nor chunks ends when the connection closes
        self.interim = False  # a 1xx answer is being parsed; the real one follows
        self.waiter: asyncio.Future[None] | None = None
        # The read timeout: one timer per exchange instead of an asyncio.timeout per wait (11 µs each).
        self.read_timeout = read_timeout
        self.waiting_since = loop.time()
        self.timer: asyncio.TimerHandle | None = loop.call_later(read_timeout, self._check_idle)

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        parser = self.connection.parser
        assert parser is not None, "the parser is calling"
        status = parser.get_status_code()
        if 100 <= status < 200:
            # An interim answer (100 Continue, 103 Early Hints): the real one follows on this connection.
            self.interim = True
            self.headers = []
            return
        self.status = status
        # llhttp answers should_keep_alive() only until the message completes; it reads False after.
        self.keep_alive = parser.should_keep_alive()
        framed = any(name in ("content-length", "transfer-encoding") for name, _ in self.headers)
        self.until_close = not framed and status not in (204, 304)
        self.connection.state = RECEIVING
        if not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _PAUSE_AT:
            self.connection.pause_reading()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        self.complete = True  # finish(), inlined: this runs once per request
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)
        self.connection.state = DONE

    # our side
    def finish(self) -> None:
        """The body is whole (its length or last chunk arrived, or, unframed, the connection closed)."""
        self.complete = True
        self.stop_timer()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def fail(self, error: GatewayError) -> None:
        self.stop_timer()
        if self.error is None:
            self.error = error
        if not self.head.done():
            self.head.set_exception(error)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _check_idle(self) -> None:
        self.timer = None
        if self.complete or self.error is not None:
            return
        waiting = not self.head.done() or (self.waiter is not None and not self.waiter.done())
        idle = self.loop.time() - self.waiting_since
        if waiting and idle >= self.read_timeout:
            self.connection.fail(BackendTimeoutError("The model backend did not answer in time."))
            return
        # Not waiting (the client is slow to take what came): look again a whole timeout from now.
        delay = self.read_timeout - idle if waiting else self.read_timeout
        self.timer = self.loop.call_later(delay, self._check_idle)

    async def next_chunk(self) -> bytes | None:
        """The body bytes received since the last call (waiting for some), or ``None`` at its end."""
        chunks = self.chunks
        while not chunks:
            if self.error is not None:
                raise self.error
            if self.complete:
                return None
            self.waiting_since = self.loop.time()
            self.waiter = self.loop.create_future()
            await self.waiter
        # Everything that has arrived goes on together: bytes the backend sent at once stay together.
        chunk = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        if self.buffered > _PAUSE_AT:
            self.connection.resume_reading()
        self.buffered = 0
        return chunk
