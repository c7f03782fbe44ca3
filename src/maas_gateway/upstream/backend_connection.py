"""One keep-alive connection to a backend, as an asyncio protocol that parses answers with httptools.

A connection carries one request at a time. ``start`` sends a request and returns its
``BackendExchange``, whose ``head`` future completes when the answer's status and headers have arrived;
the body is read with ``next_chunk``. Where the connection is in its life is one ``ConnectionState``;
what is known about the current answer lives in the exchange, a new one per request, so nothing of one
answer can leak into the next. Failures (a broken answer, a lost connection, a read timeout) are mapped
here to the gateway's 502/504 errors. The pool that reuses connections is
``httptools_transport.HttptoolsTransport``.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from typing import cast

import httptools

from maas_gateway.errors import BackendTimeoutError, BackendUnavailableError, GatewayError
from maas_gateway.upstream.target import Origin

__all__ = ["BackendConnection", "BackendExchange", "ConnectionState"]

_PAUSE_AT = 1024 * 1024  # stop reading from a backend while this much is waiting for a slow client
_BROKEN = "The model backend closed the connection or sent a broken answer."


class ConnectionState(enum.Enum):
    IDLE = "idle"  # open and carrying no request: just connected, or waiting in the pool
    AWAITING_HEAD = "awaiting head"  # a request went out; its status and headers have not arrived
    RECEIVING = "receiving"  # the head arrived; more of the body is to come
    DONE = "done"  # the whole answer arrived; the connection waits to be given back to the pool
    CLOSED = "closed"  # lost, failed or closed by us: never used again


class BackendExchange:
    """One request and its answer: what the parser has said about the answer so far."""

    __slots__ = (
        "buffered",
        "chunks",
        "complete",
        "error",
        "got_bytes",
        "head",
        "headers",
        "interim",
        "keep_alive",
        "status",
        "until_close",
    )

    def __init__(self, head: asyncio.Future[None]) -> None:
        self.head = head  # done when the status and headers have arrived
        self.status = 0
        self.headers: list[tuple[str, str]] = []
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False  # the whole body arrived (it may not all have been read yet)
        self.error: GatewayError | None = None
        self.got_bytes = False  # whether the backend answered anything (a failed reuse is retried if not)
        self.keep_alive = False
        self.until_close = False  # a body with neither length nor chunks ends when the connection closes
        self.interim = False  # a 1xx answer is being parsed; the real one follows


class BackendConnection(asyncio.Protocol):
    """One keep-alive connection to a backend, carrying one exchange at a time."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.state = ConnectionState.IDLE
        self.exchange: BackendExchange | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.paused = False  # back-pressure: reading stopped while a slow client catches up
        self.waiter: asyncio.Future[None] | None = None
        self.idle_since = 0.0  # loop time it was last given back to the pool
        # The read timeout: one timer per exchange instead of an asyncio.timeout per wait (11 µs each).
        self.read_timeout = 0.0
        self.waiting_since = 0.0
        self.timer: asyncio.TimerHandle | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without inheriting from it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:  # bytes nobody asked for on an idle connection: it cannot be trusted
            self.close()
            return
        exchange.got_bytes = True
        self.waiting_since = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.fail(BackendUnavailableError(_BROKEN))

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timer()
        exchange = self.exchange
        if exchange is not None and not exchange.complete:
            if self.state is ConnectionState.RECEIVING and exchange.until_close:
                exchange.complete = True  # the body ended with the connection, as its head announced
                self._wake()
            else:
                self.fail(BackendUnavailableError(_BROKEN))
        self.state = ConnectionState.CLOSED

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.exchange is not None, "the parser runs only during an exchange"
        self.exchange.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        exchange = self.exchange
        assert exchange is not None, "the parser runs only during an exchange"
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            # An interim answer (100 Continue, 103 Early Hints): the real one follows on this connection.
            exchange.interim = True
            exchange.headers = []
            return
        exchange.status = status
        # llhttp answers should_keep_alive() only until the message completes; it reads False after.
        exchange.keep_alive = self.parser.should_keep_alive()
        framed = any(name in ("content-length", "transfer-encoding") for name, _ in exchange.headers)
        exchange.until_close = not framed and status not in (204, 304)
        self.state = ConnectionState.RECEIVING
        if not exchange.head.done():
            exchange.head.set_result(None)

    def on_body(self, body: bytes) -> None:
        exchange = self.exchange
        assert exchange is not None, "the parser runs only during an exchange"
        exchange.chunks.append(body)
        exchange.buffered += len(body)
        if exchange.buffered > _PAUSE_AT and self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        exchange = self.exchange
        assert exchange is not None, "the parser runs only during an exchange"
        if exchange.interim:
            exchange.interim = False
            return
        exchange.complete = True
        self.state = ConnectionState.DONE
        self._stop_timer()
        self._wake()

    # our side
    def start(self, data: bytes, read_timeout: float) -> BackendExchange:
        """Send a request on this idle connection; await the exchange's ``head`` for the answer's head.

        The exchange fails with a timeout when the backend sends nothing for ``read_timeout`` while
        the gateway waits for it (for the head, or for more of the body).
        """
        assert self.state is ConnectionState.IDLE, "only an idle connection takes a request"
        assert self.transport is not None, "an idle connection is connected"
        loop = self.loop
        self.parser = httptools.HttpResponseParser(self)
        exchange = self.exchange = BackendExchange(loop.create_future())
        self.state = ConnectionState.AWAITING_HEAD
        self.read_timeout = read_timeout
        self.waiting_since = loop.time()
        self._stop_timer()
        self.timer = loop.call_later(read_timeout, self._check_idle)
        self.transport.write(data)
        return exchange

    def release(self) -> bool:
        """The exchange is over: make the connection idle again if it can be reused, else close it."""
        exchange = self.exchange
        transport = self.transport
        reusable = (
            self.state is ConnectionState.DONE
            and exchange is not None
            and exchange.keep_alive
            and not self.paused
            and transport is not None
            and not transport.is_closing()
            # An answer that came early (a 413, say) while the request body is still going out.
            and transport.get_write_buffer_size() == 0
        )
        self.exchange = None
        if not reusable:
            self.close()
            return False
        self.state = ConnectionState.IDLE
        self.idle_since = self.loop.time()
        return True

    def usable(self) -> bool:
        """Whether this pooled connection can carry a request (the backend may have closed it)."""
        return (
            self.state is ConnectionState.IDLE
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def close(self) -> None:
        self._stop_timer()
        self.state = ConnectionState.CLOSED
        if self.transport is not None:
            self.transport.close()

    def _check_idle(self) -> None:
        self.timer = None
        exchange = self.exchange
        if exchange is None or exchange.complete or exchange.error is not None:
            return
        waiting = not exchange.head.done() or (self.waiter is not None and not self.waiter.done())
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
        """End the exchange with ``error`` and close the connection."""
        exchange = self.exchange
        if exchange is not None:
            if exchange.error is None:
                exchange.error = error
            if not exchange.head.done():
                exchange.head.set_exception(error)
        self._wake()
        self.close()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def next_chunk(self, exchange: BackendExchange) -> bytes | None:
        """The body bytes received since the last call (waiting for some), or ``None`` at its end."""
        chunks = exchange.chunks
        while not chunks:
            if exchange.error is not None:
                raise exchange.error
            if exchange.complete:
                return None
            self.waiting_since = self.loop.time()
            self.waiter = self.loop.create_future()
            await self.waiter
        # Everything that has arrived goes on together: bytes the backend sent at once stay together.
        chunk = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        exchange.buffered = 0
        if self.paused and self.transport is not None and not self.transport.is_closing():
            self.paused = False
            self.transport.resume_reading()
        return chunk
