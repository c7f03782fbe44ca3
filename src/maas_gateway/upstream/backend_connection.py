"""One keep-alive connection to a backend, as an asyncio protocol; its answers are parsed with httptools.

A connection carries one request at a time. ``start`` sends a request and returns a new
``BackendExchange`` (backend_exchange.py), whose ``head`` future completes when the answer's status and
headers have arrived and whose ``next_chunk`` reads the body. Where the connection is in its life is one
``ConnectionState``. Failures (a broken answer, a lost connection, a read timeout) are mapped here and in
the exchange to the gateway's 502/504 errors. The pool that reuses connections is
``httptools_transport.HttptoolsTransport``.
"""

from __future__ import annotations

import asyncio
from typing import cast

import httptools

from maas_gateway.errors import BackendUnavailableError, GatewayError
from maas_gateway.upstream.backend_exchange import BackendExchange
from maas_gateway.upstream.connection_state import (
    AWAITING_HEAD,
    CLOSED,
    DONE,
    IDLE,
    RECEIVING,
    ConnectionState,
)
from maas_gateway.upstream.target import Origin

__all__ = ["BackendConnection", "BackendExchange", "ConnectionState"]

_BROKEN = "The model backend closed the connection or sent a broken answer."


class BackendConnection(asyncio.Protocol):
    """One keep-alive connection to a backend, carrying one exchange at a time."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.state: ConnectionState = IDLE
        self.exchange: BackendExchange | None = None
        self.parser: httptools.HttpResponseParser | None = None  # a new one per exchange
        self.paused = False  # back-pressure: reading stopped while a slow client catches up
        self.idle_since = 0.0  # loop time it was last given back to the pool

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without inheriting from it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        parser = self.parser
        if exchange is None or parser is None or exchange.complete:
            self.close()  # bytes nobody asked for: the connection cannot be trusted with another request
            return
        exchange.got_bytes = True
        exchange.waiting_since = self.loop.time()
        try:
            parser.feed_data(data)
        except httptools.HttpParserError:
            self.fail(BackendUnavailableError(_BROKEN))

    def connection_lost(self, exc: Exception | None) -> None:
        exchange = self.exchange
        if exchange is not None and not exchange.complete:
            if self.state is RECEIVING and exchange.until_close:
                exchange.finish()  # the body ended with the connection, as its head announced
            else:
                exchange.fail(BackendUnavailableError(_BROKEN))
        self.state = CLOSED

    # from the exchange
    def pause_reading(self) -> None:
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.paused and self.transport is not None and not self.transport.is_closing():
            self.paused = False
            self.transport.resume_reading()

    # from the pool
    def start(self, data: bytes, read_timeout: float) -> BackendExchange:
        """Send a request on this idle connection; await the exchange's ``head`` for the answer's head.

        The exchange fails with a timeout when the backend sends nothing for ``read_timeout`` while
        the gateway waits for it (for the head, or for more of the body).
        """
        assert self.state is IDLE, "only an idle connection takes a request"
        assert self.transport is not None, "an idle connection is connected"
        exchange = self.exchange = BackendExchange(self, read_timeout)
        # The parser lives here rather than in the exchange, its protocol: a reference cycle between the
        # two would leave every exchange to the garbage collector (2 µs per request more, measured).
        self.parser = httptools.HttpResponseParser(exchange)
        self.state = AWAITING_HEAD
        self.transport.write(data)
        return exchange

    def release(self) -> bool:
        """The exchange is over: make the connection idle again if it can be reused, else close it."""
        exchange = self.exchange
        transport = self.transport
        reusable = (
            self.state is DONE
            and exchange is not None
            and exchange.keep_alive
            and not self.paused
            and transport is not None
            and not transport.is_closing()
            # An answer that came early (a 413, say) while the request body is still going out.
            and transport.get_write_buffer_size() == 0
        )
        self.exchange = None
        if exchange is not None and exchange.timer is not None:
            exchange.stop_timer()
        if not reusable:
            self.close()
            return False
        self.state = IDLE
        self.idle_since = self.loop.time()
        return True

    def usable(self) -> bool:
        """Whether this pooled connection can carry a request (the backend may have closed it)."""
        return self.state is IDLE and self.transport is not None and not self.transport.is_closing()

    def fail(self, error: GatewayError) -> None:
        """End the exchange with ``error`` and close the connection."""
        if self.exchange is not None:
            self.exchange.fail(error)
        self.close()

    def close(self) -> None:
        self.state = CLOSED
        if self.transport is not None:
            self.transport.close()
