"""A lean HTTP/1.1 client for backends: asyncio protocols, llhttp parsing (httptools), keep-alive pools.

The upstream client runs twice per request on the gateway's hot path, and aiohttp's general-purpose client
cost about 240 µs of CPU per request on this project's test machine where this one costs far less
(docs/decisions.md); parsing is left to httptools (llhttp, the parser of Node.js and uvicorn). It speaks
only what backends need: one request per connection at a time, Content-Length request bodies, any
response framing (length, chunked, close), streaming, timeouts, TLS. This module is the pool of
keep-alive connections per backend origin; one connection is ``backend_connection.BackendConnection``,
where failures are mapped, at the edge, to the gateway's 502/504 errors.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Sequence

from maas_gateway.errors import BackendConnectError, BackendUnavailableError
from maas_gateway.upstream.backend_connection import BackendConnection
from maas_gateway.upstream.backend_exchange import BackendExchange
from maas_gateway.upstream.base import UpstreamRequest, UpstreamResponse
from maas_gateway.upstream.target import Origin, Target, parse_target

__all__ = ["HttptoolsTransport"]


class _Response:
    def __init__(
        self, connection: BackendConnection, exchange: BackendExchange, transport: HttptoolsTransport
    ) -> None:
        self._connection = connection
        self._exchange = exchange
        self._owner = transport
        self.status = exchange.status
        self.headers: Sequence[tuple[str, str]] = exchange.headers
        self._released = False

    async def read(self) -> bytes:
        parts = []
        next_chunk = self._exchange.next_chunk
        try:
            while (chunk := await next_chunk()) is not None:
                parts.append(chunk)
        finally:
            self._release()
        return b"".join(parts)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        next_chunk = self._exchange.next_chunk
        try:
            while (chunk := await next_chunk()) is not None:
                yield chunk
        finally:
            self._release()

    def close(self) -> None:
        if self._released:
            return  # the connection may already carry another request: never touch it again
        if not self._exchange.complete:
            self._connection.fail(BackendUnavailableError("The request was abandoned."))
        self._release()

    def _release(self) -> None:
        if not self._released:
            self._released = True
            self._owner._give_back(self._connection)


class HttptoolsTransport:
    """Pooled keep-alive connections per backend origin; create it inside the running event loop.

    ``tls`` verifies https backends (``tls.tls_context``; the system's CAs when omitted). A connection
    left idle for ``idle_timeout`` seconds is closed, so a quiet gateway does not hold sockets forever.
    """

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int,
        idle_timeout: float = 60.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.idle_timeout = idle_timeout
        # Per origin, the oldest idle connection first: requests take the newest, the sweep the oldest.
        self._idle: dict[Origin, list[BackendConnection]] = {}
        self._slots = asyncio.Semaphore(max_connections)
        self._targets: dict[str, Target] = {}
        self._ssl = tls
        self._sweeper: asyncio.TimerHandle | None = None

    def _target(self, url: str) -> Target:
        target = self._targets.get(url)
        if target is None:
            target = parse_target(url)
            if len(self._targets) < 10_000:
                self._targets[url] = target
        return target

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        target = self._target(request.url)
        lines = [f"{request.method} {target.path} HTTP/1.1\r\nhost: {target.host_header}"]
        lines += [f"{name}: {value}" for name, value in request.headers]
        if target.authorization is not None:
            lines.append(f"authorization: {target.authorization}")
        lines.append(f"content-length: {len(request.body)}\r\n\r\n")
        data = "\r\n".join(lines).encode("latin-1") + request.body
        await self._slots.acquire()
        try:
            connection, exchange = await self._start(target.origin, data)
        except BaseException:
            self._slots.release()
            raise
        return _Response(connection, exchange, self)

    async def _start(self, origin: Origin, data: bytes) -> tuple[BackendConnection, BackendExchange]:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if not connection.usable():
                connection.close()
                continue
            exchange = connection.start(data, self.read_timeout)
            try:
                await self._head(connection, exchange)
                return connection, exchange
            except BackendUnavailableError:
                if exchange.got_bytes:
                    raise
                # The backend closed an idle connection as we reused it: nothing was processed. Retry
                # once, on a new connection (not on every idle one: a request that crashes the
                # backend must not be sent again and again).
                break
        connection = await self._connect(origin)
        exchange = connection.start(data, self.read_timeout)
        await self._head(connection, exchange)
        return connection, exchange

    @staticmethod
    async def _head(connection: BackendConnection, exchange: BackendExchange) -> None:
        try:
            await exchange.head
        except asyncio.CancelledError:
            connection.fail(BackendUnavailableError("The request was abandoned."))  # close, not pool
            raise

    async def _connect(self, origin: Origin) -> BackendConnection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        context = None
        if scheme == "https":
            context = self._ssl = self._ssl or ssl.create_default_context()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: BackendConnection(origin), host, port, ssl=context
                )
        except (OSError, TimeoutError):
            raise BackendConnectError("The model backend cannot be reached.") from None
        return connection

    def _give_back(self, connection: BackendConnection) -> None:
        self._slots.release()
        if connection.release():
            self._idle.setdefault(connection.origin, []).append(connection)
            if self._sweeper is None:
                self._sweeper = connection.loop.call_later(self.idle_timeout, self._sweep)

    def _sweep(self) -> None:
        """Close the connections idle for ``idle_timeout``; come back when the next one will be."""
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        next_expiry = None
        for idle in self._idle.values():
            expired = 0
            for connection in idle:  # oldest first: stop at the first one still in time
                if connection.idle_since + self.idle_timeout > now:
                    break
                connection.close()
                expired += 1
            del idle[:expired]
            if idle and (next_expiry is None or idle[0].idle_since < next_expiry):
                next_expiry = idle[0].idle_since
        if next_expiry is not None:
            delay = max(next_expiry + self.idle_timeout - now, 0.0)
            self._sweeper = asyncio.get_running_loop().call_later(delay, self._sweep)

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()
