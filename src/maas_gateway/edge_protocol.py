"""The gateway's HTTP/1.1 edge: header limits, read timeouts and a connection cap on uvicorn's protocol.

Everything here runs before the application sees a request, on the event loop, for every connection:

- **Header size.** httptools concatenates a header value across reads, so one 64 MB header costs seconds
  of CPU and memory that is never given back. Bytes are counted before they reach the parser, and the
  request line and headers together may not pass ``max_header_bytes``: the parser is fed up to the limit
  and no further, then the client gets a 431 and the connection is closed. (A head that starts in the
  same read as the end of the previous request's body is counted from the next read on, so the limit is
  exceeded by at most one read, 64 KiB with uvloop, and only by pipelining clients.)
- **Header count.** More than ``max_headers`` fields is a 431 at the first one too many.
- **Header timeout.** From a connection's opening, or from a request's first bytes, its headers must be
  complete within ``header_timeout``; else 408. Idle kept-alive connections are uvicorn's (keep-alive).
- **Body timeout.** Once the headers are complete, the whole body must arrive within ``body_timeout``
  (a deadline for the body, not for each read: a client trickling a byte at a time is held to it too).
- **Connections.** Past ``max_connections`` open connections of this listener, a new connection's request
  is answered 503 without being parsed, and the connection closed.
- **Bad framing** (what httptools refuses) is a 400.

Every answer is in the OpenAI error shape with ``connection: close``, written only where a response is
possible: never in the middle of another response on the same connection, which is closed instead.
After an answer the connection is half-closed and what the client still sends is read and dropped (up to
``DRAIN_BYTES``, then reading stops) for up to ``LINGER`` seconds before it is closed: closing a socket
with unread data resets the connection, and the client would lose the answer it has not read yet
(nginx's lingering close).
Timers are armed only when a read leaves a head or a body incomplete, so a request that arrives in one
read costs no timer at all.
"""

from __future__ import annotations

import asyncio
import http
import logging
import time
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.server import ServerState

from maas_gateway.edge_limits import EdgeConfig, EdgeLimits
from maas_gateway.errors import error_body
from maas_gateway.http_protocol import CoalescingHttpToolsProtocol

__all__ = ["DRAIN_BYTES", "LINGER", "EdgeHttpToolsProtocol", "edge_response"]

LINGER = 2.0
DRAIN_BYTES = 256 * 1024  # an attacker still sending after its 431 costs this much reading, no more

_DEFAULT_LIMITS = EdgeLimits()
logger = logging.getLogger("maas_gateway.edge")


class _QuietLog:
    """At most one line per reason and interval: an attack must not turn into a flood of log lines."""

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, level: int, reason: str, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last.get(reason, -self.interval) < self.interval:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
            return
        self._last[reason] = now
        suppressed = self._suppressed.pop(reason, 0)
        if suppressed:
            message += f" ({suppressed} more like it in the last {self.interval:g} s)"
        logger.log(level, message + ".", *args)


_quiet = _QuietLog()


def edge_response(
    status: int, message: str, code: str, error_type: str = "invalid_request_error", retry_after: int = 0
) -> bytes:
    """A whole HTTP/1.1 response in the OpenAI error shape that ends the connection."""
    body = error_body(message, error_type, code)
    head = [
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        "connection: close",
    ]
    if retry_after:
        head.append(f"retry-after: {retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + body


class _Refused(Exception):
    """Raised inside a parser callback to stop httptools once the connection has been answered."""


class EdgeHttpToolsProtocol(CoalescingHttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits = config.edge if isinstance(config, EdgeConfig) else _DEFAULT_LIMITS
        self._max_head_bytes = limits.max_header_bytes  # read for every read of every connection
        self._max_headers = limits.max_headers
        self._in_head = True  # reading a request line and headers (or waiting for them)
        self._head_bytes = 0  # bytes of the current head fed to the parser so far
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._over_capacity = False
        self._refused = False  # answered (or closed) by the edge: nothing more is parsed
        self._ignoring = False  # refused or over capacity: one flag for the hot path to test
        self._drained = 0  # bytes read and dropped after a refusal

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # The set includes this connection; a connection past the cap is answered at its first bytes,
        # once they are read, so the answer is not lost to a reset.
        if len(self.connections) > self.limits.max_connections:
            self._over_capacity = self._ignoring = True
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._ignoring:
            if not self._refused:
                self._refuse_over_capacity()
                return
            self._drained += len(data)  # after an answer, while lingering: dropped
            if self._drained > DRAIN_BYTES and not self.transport.is_closing():
                self.transport.pause_reading()
            return
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self._max_head_bytes:
                self._head_bytes -= len(data)
                self._feed_to_the_limit(data)
                return
        self._feed(data)

    def _feed_to_the_limit(self, data: bytes) -> None:
        """Feed only what the limit allows, so the parser never holds more of a head than that."""
        room = self._max_head_bytes - self._head_bytes
        self._feed(data[:room])
        if self._refused:
            return
        if self._in_head:
            self._refuse_large_head()
        else:
            self._feed(data[room:])  # the head ended in time: the rest is its body

    def _feed(self, data: bytes) -> None:
        """uvicorn's ``data_received`` with an OpenAI-shaped 400 for bad framing, then the timers."""
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as exc:
            self._refuse_bad_framing(exc)
            return
        if self._in_head:
            if self._head_bytes and self._head_timer is None:
                self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)
        elif self._body_timer is None and not self._refused:
            self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_timed_out)

    # Parser callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= self._max_headers:
            message = f"The request has more than {self._max_headers} header fields."
            self._refuse(edge_response(431, message, "too_many_headers"))
            raise _Refused
        # uvicorn's on_header, inlined: this runs for every header of every request.
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        # uvicorn's on_message_complete, inlined: this runs for every request.
        if (self.parser.should_upgrade() and self._should_upgrade()) or self.cycle.response_complete:
            return
        self.cycle.more_body = False
        self.cycle.message_event.set()

    # Refusals

    def _refuse_bad_framing(self, exc: httptools.HttpParserError) -> None:
        if self._refused:
            return  # our own _Refused, raised from a callback after answering
        reason = str(exc).strip().rstrip(".") or "unreadable request"
        _quiet.log(logging.INFO, "framing", "Refused a request that is not valid HTTP/1.1: %s", reason)
        self._refuse(edge_response(400, f"The request is not valid HTTP/1.1 ({reason}).", "invalid_http"))

    def _refuse_large_head(self) -> None:
        limit = self.limits.max_header_bytes
        _quiet.log(logging.INFO, "head", "Refused a request whose headers are larger than %d bytes", limit)
        message = f"The request line and headers are larger than the limit of {limit} bytes."
        self._refuse(edge_response(431, message, "headers_too_large"))

    def _refuse_over_capacity(self) -> None:
        _quiet.log(
            logging.WARNING,
            "connections",
            "Refused a connection: %d connections are open and the limit is %d",
            len(self.connections),
            self.limits.max_connections,
        )
        message = "The gateway has too many open connections; try again in a moment."
        self._refuse(edge_response(503, message, "too_many_connections", "api_error", retry_after=1))

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._refused:
            return
        seconds = self.limits.header_timeout
        message = f"The request headers did not arrive within {seconds:g} seconds."
        self._refuse(edge_response(408, message, "header_timeout"))

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self._refused:
            return
        if self.cycle is not None and self.cycle.response_started:
            # Answered already (a 401 before the body was read, say): the rest of the body is not awaited.
            self._refused = self._ignoring = True
            self.transport.close()
            return
        seconds = self.limits.body_timeout
        message = f"The request body did not arrive within {seconds:g} seconds."
        self._refuse(edge_response(408, message, "body_timeout"))

    def _refuse(self, response: bytes) -> None:
        """Answer ``response`` if no other response is under way on this connection, then close it."""
        self._refused = self._ignoring = True
        self._cancel_timers()
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            self.transport.write(response)
        elif not cycle.response_started:
            # The application is still reading this request: it sees a disconnect and answers nothing.
            cycle.disconnected = True
            cycle.message_event.set()
            self.transport.write(response)
        else:
            self.transport.close()  # another response is under way: nothing can be said
            return
        if not self.transport.is_closing():
            self.flow.resume_reading()
            self.transport.write_eof()
            self.loop.call_later(LINGER, self._close)

    def _close(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None
