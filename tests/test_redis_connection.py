"""The limiter's multiplexed Redis connection, against a private redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from redis.exceptions import ResponseError

from maas_gateway.limits.redis_connection import RedisConnection
from tests.support.redis_server import RedisServer

COUNT_KEYS = "return #KEYS * 1000 + tonumber(ARGV[1])"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


def _run(url: str, scenario: Callable[[RedisConnection], Awaitable[object]], timeout: float = 2) -> None:
    async def main() -> None:
        connection = RedisConnection(url, timeout=timeout)
        try:
            await scenario(connection)
        finally:
            await connection.aclose()

    asyncio.run(main())


def test_concurrent_commands_each_get_their_own_reply(redis_server: RedisServer) -> None:
    """A thousand commands in flight at once on one connection: every caller gets its own answer."""

    async def scenario(connection: RedisConnection) -> None:
        replies = await asyncio.gather(*(connection.execute("INCRBY", f"k{i % 7}", i) for i in range(1000)))
        expected: dict[str, int] = {}
        for i, reply in enumerate(replies):
            key = f"k{i % 7}"
            expected[key] = expected.get(key, 0) + i
            assert reply == expected[key]

    _run(redis_server.url, scenario)


def test_scripts_are_loaded_once_and_again_after_a_flush(redis_server: RedisServer) -> None:
    """A script unknown to Redis is sent whole once, then run by digest, also after SCRIPT FLUSH."""

    async def scenario(connection: RedisConnection) -> None:
        assert await connection.script(COUNT_KEYS, ["a", "b"], [7]) == 2007
        assert await connection.script(COUNT_KEYS, ["a"], [1]) == 1001
        await connection.execute("SCRIPT", "FLUSH")
        assert await connection.script(COUNT_KEYS, [], [5]) == 5

    _run(redis_server.url, scenario)


def test_error_replies_raise_and_leave_the_connection_usable(redis_server: RedisServer) -> None:
    """An error reply raises for its caller only; the commands around it get their answers."""

    async def scenario(connection: RedisConnection) -> None:
        await connection.execute("SET", "text", "abc")
        replies: list[object] = await asyncio.gather(
            connection.execute("PING"),
            connection.execute("INCR", "text"),
            connection.execute("GET", "text"),
            return_exceptions=True,
        )
        before, failed, after = replies
        assert before == b"PONG"
        assert isinstance(failed, ResponseError)
        assert "not an integer" in str(failed)
        assert after == b"abc"

    _run(redis_server.url, scenario)


def test_a_restarted_redis_is_reconnected_to(redis_server: RedisServer) -> None:
    """When Redis goes away, callers get ConnectionError; once it is back, commands work again."""

    async def scenario(connection: RedisConnection) -> None:
        assert await connection.ping()
        redis_server.stop()
        with pytest.raises(ConnectionError):
            await connection.execute("PING")
        redis_server.start()
        assert await connection.ping()

    _run(redis_server.url, scenario)


def test_a_caller_that_stops_waiting_leaves_the_others_their_replies(redis_server: RedisServer) -> None:
    """A caller that gives up does not disturb the connection: its late reply is dropped, not misdelivered."""

    async def scenario(connection: RedisConnection) -> None:
        await connection.execute("SET", "k", "1")
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await connection.execute("DEBUG", "SLEEP", "0.5")
        assert await connection.execute("GET", "k") == b"1"  # not the sleep's "OK"

    _run(redis_server.url, scenario)


def test_commands_time_out_by_themselves(redis_server: RedisServer) -> None:
    """A Redis that stalls fails every command in flight with TimeoutError once the timeout is over,
    rather than with its late replies; once Redis wakes, a new connection is served. No duration is
    measured: a caller that waited would get the replies, and the deadline only bounds a hang."""

    async def scenario(connection: RedisConnection) -> None:
        await connection.execute("SET", "k", "1")
        stalled = await asyncio.gather(
            connection.execute("DEBUG", "SLEEP", "0.6"),
            connection.execute("GET", "k"),
            return_exceptions=True,
        )
        assert all(isinstance(outcome, TimeoutError) for outcome in stalled), stalled
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while True:  # each try ends within the timeout, with the answer once Redis is awake
            try:
                assert await connection.execute("GET", "k") == b"1"  # not the sleep's "OK"
                break
            except TimeoutError:
                assert loop.time() < deadline, "no new connection was served after Redis woke"

    _run(redis_server.url, scenario, timeout=0.2)


async def _refusing_server(greeting: bytes) -> asyncio.Server:
    """A server that answers every new connection with ``greeting`` and hangs up, as a full Redis does."""

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(greeting)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(refuse, "127.0.0.1", 0)


@pytest.mark.parametrize("auth", ["", ":s3cret@"])
def test_a_redis_that_refuses_connections_fails_commands_at_once(auth: str) -> None:
    """An unasked-for error at connect time ("max number of clients reached") fails, never hangs."""

    async def main() -> None:
        server = await _refusing_server(b"-ERR max number of clients reached\r\n")
        port = server.sockets[0].getsockname()[1]
        connection = RedisConnection(f"redis://{auth}127.0.0.1:{port}/0", timeout=5)
        try:
            started = asyncio.get_running_loop().time()
            for _ in range(3):
                with pytest.raises((ConnectionError, ResponseError)):
                    await connection.execute("PING")
            assert asyncio.get_running_loop().time() - started < 2
        finally:
            await connection.aclose()
            server.close()

    asyncio.run(main())


def test_unsupported_url_options_are_refused() -> None:
    """Options the connection would silently ignore stop the gateway at start-up instead."""
    with pytest.raises(ValueError, match="socket_keepalive"):
        RedisConnection("redis://127.0.0.1:6379/0?socket_keepalive=true", timeout=1)
    with pytest.raises(ValueError, match="ssl_cert_reqs"):
        RedisConnection("redis://127.0.0.1:6379/0?ssl_cert_reqs=none", timeout=1)
    with pytest.raises(ValueError, match="must be none, optional or required"):
        RedisConnection("rediss://127.0.0.1:6379/0?ssl_cert_reqs=CERT_REQUIRED", timeout=1)
    with pytest.raises(ValueError, match="cannot be true"):
        RedisConnection("rediss://127.0.0.1:6379/0?ssl_cert_reqs=none&ssl_check_hostname=true", timeout=1)
    RedisConnection("rediss://127.0.0.1:6379/0?ssl_cert_reqs=none&ssl_check_hostname=false", timeout=1)


def test_password_and_database_from_the_url(tmp_path: Path) -> None:
    """AUTH and SELECT come from the URL: the keys land in the database it names."""
    server = RedisServer(tmp_path, password="s3cret").start()
    try:
        url = f"redis://:s3cret@127.0.0.1:{server.port}/3"
        _run(url, lambda connection: connection.execute("SET", "where", "three"))
        client = server.client()
        assert client.get("where") is None
        client.select(3)
        assert client.get("where") == b"three"
        client.close()

        async def refused(connection: RedisConnection) -> None:
            with pytest.raises(ResponseError):
                await connection.execute("PING")

        _run(f"redis://:wrong@127.0.0.1:{server.port}/0", refused)
    finally:
        server.stop()


def test_unix_socket_urls(tmp_path: Path) -> None:
    """A unix:// URL connects through the socket file."""
    socket_path = tmp_path / "redis.sock"
    server = RedisServer(tmp_path, "--unixsocket", str(socket_path)).start()
    try:

        async def scenario(connection: RedisConnection) -> None:
            assert await connection.ping()

        _run(f"unix://{socket_path}", scenario)
    finally:
        server.stop()
