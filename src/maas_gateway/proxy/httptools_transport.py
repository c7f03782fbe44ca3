"""A lean HTTP/1.1 client for backends: asyncio protocols, llhttp parsing (httptools), keep-alive pools.

The upstream client runs twice per request on the gateway's hot path, and aiohttp's general-purpose client
costs about 240 µs of CPU per request on this project's test machine where this one costs about 90 µs
(bench/README.md); parsing is left to httptools (llhttp, the parser of Node.js and uvicorn). It speaks
only what backends need: one request per connection at a time, Content-Length request bodies, any
response framing (length, chunked, close), streaming, timeouts. Failures are mapped here, at the edge, to
the gateway's 502/504 errors.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import cast
from urllib.parse import urlsplit

import httptools

from maas_gateway.errors import BackendTimeoutError, BackendUnavailableError, GatewayError
from maas_gateway.proxy.upstream import UpstreamRequest, UpstreamResponse

__all__ = ["HttptoolsTransport"]

_PAUSE_AT = 1024 * 1024  # stop reading from a backend while this much is waiting for a slow client
_BROKEN = "The model backend closed the connection or sent a broken answer."
Origin = tuple[str, str, int]  # scheme, host, port


class _Exchange(asyncio.Protocol):
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
            self._fail(BackendUnavailableError(_BROKEN))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._stop_timer()
        if not self.complete and self.until_close and self.head is not None and self.head.done():
            self.complete = True  # a body without length or chunks ends with the connection
            self._wake()
        if not self.complete:
            self._fail(BackendUnavailableError(_BROKEN))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
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
            self._fail(BackendTimeoutError("The model backend did not answer in time."))
            return
        # Not waiting (the client is slow to take what came): look again a whole timeout from now.
        delay = self.read_timeout - idle if waiting else self.read_timeout
        self.timer = self.loop.call_later(delay, self._check_idle)

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _fail(self, error: GatewayError) -> None:
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


class _Response:
    def __init__(self, exchange: _Exchange, transport: HttptoolsTransport) -> None:
        self._exchange = exchange
        self._owner = transport
        self.status = exchange.status
        self.headers: Sequence[tuple[str, str]] = exchange.headers
        self._released = False

    async def read(self) -> bytes:
        parts = []
        try:
            while (chunk := await self._exchange.next_chunk()) is not None:
                parts.append(chunk)
        finally:
            self._release()
        return b"".join(parts)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        try:
            while (chunk := await self._exchange.next_chunk()) is not None:
                yield chunk
        finally:
            self._release()

    def close(self) -> None:
        if self._released:
            return  # the connection may already carry another request: never touch it again
        if not self._exchange.complete:
            self._exchange._fail(BackendUnavailableError("The request was abandoned."))
        self._release()

    def _release(self) -> None:
        if not self._released:
            self._released = True
            self._owner._give_back(self._exchange)


class HttptoolsTransport:
    """Pooled keep-alive connections per backend origin; create it inside the running event loop."""

    def __init__(self, *, connect_timeout: float, read_timeout: float, max_connections: int) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._idle: dict[Origin, list[_Exchange]] = {}
        self._slots = asyncio.Semaphore(max_connections)
        self._targets: dict[str, tuple[Origin, str]] = {}
        self._ssl: ssl.SSLContext | None = None

    def _target(self, url: str) -> tuple[Origin, str]:
        target = self._targets.get(url)
        if target is None:
            parts = urlsplit(url)
            scheme = parts.scheme or "http"
            port = parts.port or (443 if scheme == "https" else 80)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            target = ((scheme, parts.hostname or "localhost", port), path)
            if len(self._targets) < 10_000:
                self._targets[url] = target
        return target

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        origin, path = self._target(request.url)
        scheme, host, port = origin
        default = 443 if scheme == "https" else 80
        lines = [f"{request.method} {path} HTTP/1.1\r\nhost: {host if port == default else f'{host}:{port}'}"]
        lines += [f"{name}: {value}" for name, value in request.headers]
        lines.append(f"content-length: {len(request.body)}\r\n\r\n")
        data = "\r\n".join(lines).encode("latin-1") + request.body
        await self._slots.acquire()
        try:
            exchange = await self._exchange(origin, data)
        except BaseException:
            self._slots.release()
            raise
        return _Response(exchange, self)

    async def _exchange(self, origin: Origin, data: bytes) -> _Exchange:
        idle = self._idle.get(origin)
        while idle:
            exchange = idle.pop()
            if exchange.lost or exchange.transport is None or exchange.transport.is_closing():
                continue
            try:
                await self._head(exchange, data)
                return exchange
            except BackendUnavailableError:
                if exchange.got_bytes:
                    raise
                # The backend closed an idle connection as we reused it: nothing was processed. Retry
                # once, on a new connection (not on every idle one: a request that crashes the
                # backend must not be sent again and again).
                break
        exchange = await self._connect(origin)
        await self._head(exchange, data)
        return exchange

    async def _head(self, exchange: _Exchange, data: bytes) -> None:
        try:
            await exchange.start(data, self.read_timeout)
        except asyncio.CancelledError:
            exchange._fail(BackendUnavailableError("The request was abandoned."))  # close, not pool
            raise

    async def _connect(self, origin: Origin) -> _Exchange:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        context = None
        if scheme == "https":
            context = self._ssl = self._ssl or ssl.create_default_context()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, exchange = await loop.create_connection(lambda: _Exchange(origin), host, port, ssl=context)
        except (OSError, TimeoutError):
            raise BackendUnavailableError("The model backend cannot be reached.") from None
        return exchange

    def _give_back(self, exchange: _Exchange) -> None:
        self._slots.release()
        if exchange.reusable():
            self._idle.setdefault(exchange.origin, []).append(exchange)
        elif exchange.transport is not None:
            exchange.transport.close()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for exchange in idle:
                if exchange.transport is not None:
                    exchange.transport.close()
        self._idle.clear()
