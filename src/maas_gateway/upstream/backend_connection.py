"""One keep-alive connection to a backend, as an asyncio protocol that parses answers with httptools.

It carries one request at a time: ``start`` sends a request and returns a future for the answer's head;
the body is read with ``next_chunk``. Failures (a broken answer, a lost connection, a read timeout) are
mapped here to the gateway's 502/504 errors. The pool that reuses these connections is
``httptools_transport.HttptoolsTransport``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import cast

import httptools

from maas_gateway.errors import BackendTimeoutError, BackendUnavailableError, GatewayError

__all__ = ["BackendConnection", "Origin"]

_PAUSE_AT = 1024 * 1024  # stop reading from a backend while this much is waiting for a slow client
_BROKEN = "The model backend closed the connection or sent a broken answer."
Origin = tuple[str, str, int]  # scheme, host, port


class BackendConnection(asyncio.Protocol):
    """One keep-alive connection to a backend, carrying one request/response at a time."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.head: asyncio.Future[None] | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.waiter: asyncio.Future[None] | None = None
        self.complete = False
        self.error: GatewayError | None = None
        self.lost = False
        self.got_bytes = False
        self.until_close = False
        self.keep_alive = False
        self.paused = False
        self.interim = False
        # The read timeout: one timer per exchange instead of an asyncio.timeout per wait (11 µs each).
        self.read_timeout = 0.0
        self.waiting_since = 0.0
        self.timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without inheriting from it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        self.waiting_since = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.fail(BackendUnavailableError(_BROKEN))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._stop_timer()
        if not self.complete and self.until_close and self.head is not None and self.head.done():
            self.complete = True  # a body without length or chunks ends with the connection
            self._wake()
        if not self.complete:
            self.fail(BackendUnavailableError(_BROKEN))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            # An interim answer (100 Continue, 103 Early Hints): the real one follows on this connection.
            self.interim = True
            self.headers = []
            return
        self.status = status
        # llhttp answers should_keep_alive() only until the message completes; it reads False after.
        self.keep_alive = self.parser.should_keep_alive()
        framed = any(name in ("content-length", "transfer-encoding") for name, _ in self.headers)
        self.until_close = not framed and self.status not in (204, 304)
        if self.head is not None and not self.head.done():
            self.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > _PAUSE_AT and self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        self.complete = True
        self._stop_timer()
        self._wake()

    # our side
    def start(self, data: bytes, read_timeout: float) -> asyncio.Future[None]:
        """Send a request; the returned future completes when the answer's head has arrived.

        The exchange fails with a timeout when the backend sends nothing for ``read_timeout`` while
        the gateway waits for it (for the head, or for more of the body).
        """
        loop = self.loop
        self.parser = httptools.HttpResponseParser(self)
        self.status, self.headers, self.complete, self.error, self.got_bytes = 0, [], False, None, False
        self.interim = False
        self.keep_alive = False
        self.chunks.clear()
        self.buffered = 0
        self.head = loop.create_future()
        self.read_timeout = read_timeout
        self.waiting_since = loop.time()
        self._stop_timer()
        self.timer = loop.call_later(read_timeout, self._check_idle)
        assert self.transport is not None
        self.transport.write(data)
        return self.head

    def reusable(self) -> bool:
        return (
            self.complete
            and self.error is None
            and not self.lost
            and self.keep_alive
            and not self.paused
            and self.transport is not None
            and not self.transport.is_closing()
            # An answer that came early (a 413, say) while the request body is still going out.
            and self.transport.get_write_buffer_size() == 0
        )

    def _check_idle(self) -> None:
        self.timer = None
        if self.complete or self.error is not None:
            return
        waiting = (self.head is not None and not self.head.done()) or (
            self.waiter is not None and not self.waiter.done()
        )
        idle = self.loop.time() - self.waiting_since
        if waiting and idle >= self.read_timeout:
            self.fail(BackendTimeoutError("The model backend did not answer in time."))
            return
        # Not waiting (the client is slow to take what came): look again a whole timeout from now.
        delay = self.read_timeout - idle if waiting else self.read_timeout
        self.timer = self.loop.call_later(delay, self._check_idle)

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def fail(self, error: GatewayError) -> None:
        self._stop_timer()
        if self.error is None:
            self.error = error
        if self.head is not None and not self.head.done():
            self.head.set_exception(error)
        self._wake()
        if self.transport is not None:
            self.transport.close()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def next_chunk(self) -> bytes | None:
        """The body bytes received since the last call (waiting for some), or ``None`` at its end."""
        while not self.chunks:
            if self.error is not None:
                raise self.error
            if self.complete:
                return None
            self.waiting_since = self.loop.time()
            self.waiter = self.loop.create_future()
            await self.waiter
        # Everything that has arrived goes on together: bytes the backend sent at once stay together.
        chunk = self.chunks.popleft() if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None and not self.transport.is_closing():
            self.paused = False
            self.transport.resume_reading()
        return chunk
