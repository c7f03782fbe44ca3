"""One multiplexed connection to a standalone Redis, for the limiter's scripts on the hot path.

redis-py's asyncio client takes a pooled connection per command and reads each reply through a
``StreamReader`` under a fresh timeout task; two scripts per request cost the gateway about 500 µs of CPU
(bench/README.md). Redis answers the commands of one connection in the order they were sent, so one
connection can carry every request of a replica: each command appends a future to a queue, each reply
resolves the oldest one. Commands issued in the same step of the event loop leave in one write
(automatic pipelining). Replies are parsed by hiredis, the parser redis-py itself uses.

Every operation ends within the timeout. On the hot path (connected, script known) one timer watches the
oldest command in flight, where an ``asyncio.timeout`` around each command would cost about 11 µs: when
Redis has not answered it in time, the connection is closed and every command in flight fails with
``TimeoutError``. The cold paths (connecting with AUTH and SELECT, loading a script Redis has forgotten)
run under an ``asyncio.timeout`` for what is left of the operation's time. A caller that stops waiting
leaves the connection alone: its reply still arrives in its turn and is dropped. The next command after a
failure connects again. Errors are left to the caller's failure policy (``ResilientStorage``).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ssl
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

import hiredis
from redis.asyncio.connection import SSLConnection, parse_url
from redis.exceptions import NoScriptError, ResponseError

from maas_gateway.redis_urls import CERT_REQUIREMENTS, url_problem

__all__ = ["RedisConnection"]


class _RespProtocol(asyncio.Protocol):
    def __init__(self, timeout: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.timeout = timeout
        self.reader = hiredis.Reader()
        self.waiters: deque[tuple[asyncio.Future[Any], float]] = deque()  # with the time each was sent
        self.transport: asyncio.Transport | None = None
        self.outgoing: list[bytes] = []
        self.closed = False
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            if not self.waiters:
                # A reply nobody asked for ("max number of clients reached" on connect): unusable.
                self.close(ConnectionError(f"Redis sent an unexpected reply: {reply!r:.200}."))
                return
            waiter, _ = self.waiters.popleft()
            if waiter.done():
                continue  # its caller stopped waiting
            if isinstance(reply, hiredis.ReplyError):
                text = str(reply)
                error = NoScriptError(text) if text.startswith("NOSCRIPT") else ResponseError(text)
                waiter.set_exception(error)
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.close(ConnectionError("The connection to Redis was lost."))

    def send(self, command: bytes) -> asyncio.Future[Any]:
        waiter = self.loop.create_future()
        if self.closed:
            waiter.set_exception(ConnectionError("The connection to Redis is closed."))
            return waiter
        self.waiters.append((waiter, self.loop.time()))
        if self.timer is None:
            self.timer = self.loop.call_later(self.timeout, self._check_oldest)
        if not self.outgoing:
            self.loop.call_soon(self.flush)
        self.outgoing.append(command)
        return waiter

    def _check_oldest(self) -> None:
        self.timer = None
        if self.closed or not self.waiters:
            return
        age = self.loop.time() - self.waiters[0][1]
        if age >= self.timeout:
            self.close(TimeoutError(f"Redis did not answer within {self.timeout:g} seconds."))
        else:
            self.timer = self.loop.call_later(self.timeout - age, self._check_oldest)

    def flush(self) -> None:
        if self.outgoing and self.transport is not None and not self.closed:
            self.transport.write(b"".join(self.outgoing))
        self.outgoing.clear()

    def close(self, error: Exception | None = None) -> None:
        """Close the connection; commands in flight fail with ``error`` (or ``ConnectionError``)."""
        self.closed = True  # at once: the next command must not be queued behind a closing connection
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        failure = error or ConnectionError("The connection to Redis was closed.")
        while self.waiters:
            waiter, _ = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(failure)
        if self.transport is not None:
            self.transport.close()


class RedisConnection:
    """Commands and Lua scripts over one connection, connecting (again) when needed."""

    def __init__(self, url: str, *, timeout: float) -> None:
        if problem := url_problem(url):
            raise ValueError(f"The limit storage URL {problem}.")
        options: dict[str, Any] = dict(parse_url(url))
        self._timeout = timeout
        self._path: str | None = options.get("path")
        self._host: str = options.get("host", "localhost")
        self._port: int = options.get("port", 6379)
        tls = options.get("connection_class") is SSLConnection
        self._ssl = _tls_context(options) if tls else None
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
        """Send one command and return its reply, within the timeout."""
        protocol = self._protocol
        if protocol is not None and not protocol.closed:
            return await protocol.send(hiredis.pack_command(args))
        async with asyncio.timeout(self._timeout):
            protocol = await self._connect()
            return await protocol.send(hiredis.pack_command(args))

    async def script(self, source: str, keys: Sequence[str], args: Sequence[int | str]) -> Any:
        """Run a Lua script by its SHA1, sending its text only when Redis does not know it yet."""
        sha = self._digests.get(source)
        if sha is None:
            sha = self._digests[source] = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
        deadline = asyncio.get_running_loop().time() + self._timeout
        try:
            return await self.execute("EVALSHA", sha, len(keys), *keys, *args)
        except NoScriptError:
            async with asyncio.timeout_at(deadline):  # the rest of this operation's time
                return await self.execute("EVAL", source, len(keys), *keys, *args)

    async def _connect(self) -> _RespProtocol:
        # One attempt at a time, shared by every caller; it goes on when a caller stops waiting.
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.ensure_future(self._open())
            self._connecting.add_done_callback(_consume_exception)
        try:
            return await asyncio.shield(self._connecting)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this caller was cancelled
            # The attempt was cancelled by aclose(): to other callers that is a storage failure.
            raise ConnectionError("The connection to Redis was closed.") from None

    async def _open(self) -> _RespProtocol:
        loop = asyncio.get_running_loop()
        factory = functools.partial(_RespProtocol, self._timeout)
        async with asyncio.timeout(self._timeout):
            if self._path is not None:
                _, protocol = await loop.create_unix_connection(factory, self._path)
            else:
                _, protocol = await loop.create_connection(factory, self._host, self._port, ssl=self._ssl)
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


def _tls_context(options: dict[str, Any]) -> ssl.SSLContext:
    """A TLS context from a rediss:// URL's query (``ssl_ca_certs=...&ssl_cert_reqs=none`` ...)."""
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    if options.get("ssl_certfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
    requirement = CERT_REQUIREMENTS[str(options.get("ssl_cert_reqs", "required")).lower()]
    check_hostname = options.get("ssl_check_hostname")
    # check_hostname first: ssl refuses CERT_NONE while it is on.
    context.check_hostname = requirement != ssl.CERT_NONE if check_hostname is None else bool(check_hostname)
    context.verify_mode = requirement
    return context


def _consume_exception(future: asyncio.Future[Any]) -> None:
    # Callers see the failure; this keeps asyncio from also logging it when every caller gave up.
    if not future.cancelled():
        future.exception()
