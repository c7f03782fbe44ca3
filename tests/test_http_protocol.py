"""The server protocol sends a response head together with the body that follows it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import uvicorn

from maas_gateway.http_protocol import CoalescingHttpToolsProtocol, _HeadHoldingTransport
from tests.support.processes import free_port

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class RecordingTransport:
    """Stands in for asyncio's socket transport: keeps what would have gone to send()."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_head_and_body_leave_in_one_write() -> None:
    """A head followed by its body in the same loop step is one write, in order."""
    asyncio.run(_test_head_and_body_leave_in_one_write())


async def _test_head_and_body_leave_in_one_write() -> None:
    inner = RecordingTransport()
    holding = _HeadHoldingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]  # a recording stand-in
    holding.write(HEAD)
    holding.write(b"{}")
    await asyncio.sleep(0)
    assert inner.sent == [HEAD + b"{}"]


def test_a_head_alone_leaves_at_the_end_of_the_loop_step() -> None:
    """A stream's head is not held back until its first event: it leaves once the step ends."""
    asyncio.run(_test_a_head_alone_leaves_at_the_end_of_the_loop_step())


async def _test_a_head_alone_leaves_at_the_end_of_the_loop_step() -> None:
    inner = RecordingTransport()
    holding = _HeadHoldingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]  # a recording stand-in
    holding.write(HEAD)
    assert inner.sent == []
    await asyncio.sleep(0)
    assert inner.sent == [HEAD]
    holding.write(b"data: x\n\n")
    assert inner.sent == [HEAD, b"data: x\n\n"]


def test_close_sends_a_held_head_first() -> None:
    """Closing the connection never drops a head that is still held."""
    asyncio.run(_test_close_sends_a_held_head_first())


async def _test_close_sends_a_held_head_first() -> None:
    inner = RecordingTransport()
    holding = _HeadHoldingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]  # a recording stand-in
    holding.write(HEAD)
    holding.close()
    assert inner.sent == [HEAD]
    assert holding.is_closing()


def test_body_bytes_that_look_like_a_head_are_not_reordered() -> None:
    """Whatever is held, later writes go out after it, never before it."""
    asyncio.run(_test_body_bytes_that_look_like_a_head_are_not_reordered())


async def _test_body_bytes_that_look_like_a_head_are_not_reordered() -> None:
    inner = RecordingTransport()
    holding = _HeadHoldingTransport(inner, asyncio.get_running_loop())  # type: ignore[arg-type]  # a recording stand-in
    holding.write(b"chunk one")
    holding.write(HEAD)
    holding.write(b"chunk two")
    assert b"".join(inner.sent) == b"chunk one" + HEAD + b"chunk two"


async def _app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]  # a minimal ASGI app for the test
    if scope["type"] != "http":
        return
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]  # send is the ASGI callable
        await asyncio.sleep(0.05)
        await send({"type": "http.response.body", "body": b"late", "more_body": False})  # type: ignore[operator]  # send is the ASGI callable
        return
    await send(  # type: ignore[operator]  # send is the ASGI callable
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]  # send is the ASGI callable


async def _with_server(scenario: Callable[[int], Awaitable[None]]) -> None:
    port = free_port()
    config = uvicorn.Config(
        _app, host="127.0.0.1", port=port, http=CoalescingHttpToolsProtocol, log_config=None, lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn.Server offers a flag, not an event
            await asyncio.sleep(0.01)
        await scenario(port)
    finally:
        server.should_exit = True
        await task


def test_a_real_server_answers_keep_alive_requests_and_streams() -> None:
    """Through uvicorn, plain answers and a slow one arrive whole, on one kept-alive connection."""

    async def scenario(port: int) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(3):
                response = await client.get("/")
                assert (response.status_code, response.content) == (200, b"ok")
            async with client.stream("GET", "/stream") as stream:
                assert stream.status_code == 200  # the head came before the body was written
                assert await stream.aread() == b"late"

    asyncio.run(_with_server(scenario))


_WRITES: list[bytes] = []  # every write of the counting transport below, in order


class _CountingTransport:
    """Wraps the real socket transport and records each write, to count system calls per answer."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        _WRITES.append(data)
        self._transport.write(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)


class _CountingProtocol(CoalescingHttpToolsProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(_CountingTransport(transport))  # type: ignore[arg-type]  # a stand-in


def test_the_installed_uvicorn_still_sends_head_and_body_in_one_write() -> None:
    """Guards the private uvicorn class we subclass: through the installed uvicorn, each plain answer
    leaves in exactly one socket write (an upgrade that changes how uvicorn writes fails here)."""
    _WRITES.clear()

    async def main() -> None:
        port = free_port()
        config = uvicorn.Config(
            _app, host="127.0.0.1", port=port, http=_CountingProtocol, log_config=None, lifespan="off"
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        try:
            while not server.started:  # noqa: ASYNC110 - uvicorn.Server offers a flag, not an event
                await asyncio.sleep(0.01)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                for _ in range(3):
                    assert (await client.get("/")).content == b"ok"
        finally:
            server.should_exit = True
            await task

    asyncio.run(main())
    answers = [data for data in _WRITES if data.startswith(b"HTTP/1.1 200")]
    assert len(answers) == 3
    assert all(data.endswith(b"\r\n\r\nok") for data in answers), answers
    assert len(_WRITES) == 3
