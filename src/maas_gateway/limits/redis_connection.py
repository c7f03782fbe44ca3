"""One multiplexed connection to a standalone Redis, for the limiter's scripts on the hot path.

redis-py's asyncio client takes a pooled connection per command and reads each reply through a
``StreamReader`` under a fresh timeout task; two scripts per request cost the gateway about 500 µs of CPU
(bench/README.md). Redis answers the commands of one connection in the order they were sent, so one
connection can carry every request of a replica: each command appends a future to a queue, each reply
resolves the oldest one. Commands issued in the same step of the event loop leave in one write
(automatic pipelining). Replies are parsed by hiredis, the parser redis-py itself uses.

A caller that stops waiting (a timeout) closes the connection: its reply could otherwise arrive long after
and nobody would know whether Redis is healthy. Every command in flight then fails with
``ConnectionError``, and the next command connects again. Errors are left to the caller's failure policy
(``ResilientStorage``).
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from typing import Any, cast

import hiredis
from redis.asyncio.connection import SSLConnection, parse_url
from redis.exceptions import NoScriptError, ResponseError

__all__ = ["RedisConnection"]


class _RespProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiters: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None
        self.outgoing: list[bytes] = []
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            waiter = self.waiters.popleft()
            if waiter.done():
                continue  # its caller gave up; the connection is being closed
            if isinstance(reply, hiredis.ReplyError):
                text = str(reply)
                error = NoScriptError(text) if text.startswith("NOSCRIPT") else ResponseError(text)
                waiter.set_exception(error)
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectionError("The connection to Redis was lost."))

    def send(self, command: bytes) -> asyncio.Future[Any]:
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        if not self.outgoing:
            asyncio.get_running_loop().call_soon(self.flush)
        self.outgoing.append(command)
        return waiter

    def flush(self) -> None:
        if self.outgoing and self.transport is not None and not self.closed:
            self.transport.write(b"".join(self.outgoing))
        self.outgoing.clear()

    def close(self) -> None:
        self.closed = True  # at once: the next command must not be queued behind a closing connection
        if self.transport is not None:
            self.transport.close()


class RedisConnection:
    """Commands and Lua scripts over one connection, connecting (again) when needed."""

    def __init__(self, url: str) -> None:
        options = parse_url(url)
        self._path: str | None = options.get("path")
        self._host: str = options.get("host", "localhost")
        self._port: int = options.get("port", 6379)
        self._tls = options.get("connection_class") is SSLConnection
        self._setup: list[tuple[Any, ...]] = []
        if options.get("password") is not None:
            user = options.get("username")
            auth = ("AUTH", user, options["password"]) if user else ("AUTH", options["password"])
            self._setup.append(auth)
        if options.get("db"):
            self._setup.append(("SELECT", options["db"]))
        self._protocol: _RespProtocol | None = None
        self._connecting: asyncio.Future[_RespProtocol] | None = None
        self._digests: dict[str, str] = {}

    async def execute(self, *args: Any) -> Any:
        protocol = self._protocol
        if protocol is None or protocol.closed:
            protocol = await self._connect()
        waiter = protocol.send(hiredis.pack_command(args))
        try:
            return await waiter
        except asyncio.CancelledError:
            protocol.close()
            raise

    async def script(self, source: str, keys: list[str], args: list[int]) -> Any:
        """Run a Lua script by its SHA1, sending its text only when Redis does not know it yet."""
        sha = self._digests.get(source)
        if sha is None:
            sha = self._digests[source] = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
        try:
            return await self.execute("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.execute("EVAL", source, len(keys), *keys, *args)

    async def _connect(self) -> _RespProtocol:
        # One attempt at a time, shared by every caller; it goes on when a caller stops waiting.
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.ensure_future(self._open())
            self._connecting.add_done_callback(_consume_exception)
        return await asyncio.shield(self._connecting)

    async def _open(self) -> _RespProtocol:
        loop = asyncio.get_running_loop()
        if self._path is not None:
            _, protocol = await loop.create_unix_connection(_RespProtocol, self._path)
        else:
            context = ssl.create_default_context() if self._tls else None
            _, protocol = await loop.create_connection(_RespProtocol, self._host, self._port, ssl=context)
        try:
            for command in self._setup:
                await protocol.send(hiredis.pack_command(command))
        except BaseException:
            protocol.close()
            raise
        self._protocol = protocol
        return protocol

    async def ping(self) -> bool:
        return bool(await self.execute("PING") == b"PONG")

    async def aclose(self) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        if self._protocol is not None:
            self._protocol.close()
            self._protocol = None


def _consume_exception(future: asyncio.Future[Any]) -> None:
    # Callers see the failure; this keeps asyncio from also logging it when every caller gave up.
    if not future.cancelled():
        future.exception()
