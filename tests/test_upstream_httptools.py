"""What only the real transport does: sockets, framing on the wire, reuse, back-pressure, TLS, expiry.

Each backend here is written byte by byte in the test's own event loop (``tests/support/raw_backend.py``),
since these are the behaviours a well-behaved server never shows.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable

import pytest

from maas_gateway.upstream import (
    BackendUnavailableError,
    HttptoolsTransport,
    UpstreamRequest,
)
from tests.support.raw_backend import RawRequest, read_request, serving

BODY = b'{"model":"m"}'
Scenario = Callable[[HttptoolsTransport], Awaitable[None]]


def _run(scenario: Scenario, **options: float) -> None:
    async def main() -> None:
        settings = {"connect_timeout": 2.0, "read_timeout": 5.0, "max_connections": 8, **options}
        transport = HttptoolsTransport(
            connect_timeout=settings["connect_timeout"],
            read_timeout=settings["read_timeout"],
            max_connections=int(settings["max_connections"]),
        )
        try:
            await scenario(transport)
        finally:
            await transport.aclose()

    asyncio.run(main())


def _ok(body: bytes = b"ok") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


def _post(url: str) -> UpstreamRequest:
    return UpstreamRequest("POST", url + "/v1/chat/completions", [("content-type", "application/json")], BODY)


def test_an_ipv6_backend_gets_its_address_in_brackets_in_the_host_header() -> None:
    """``http://[::1]:PORT`` connects to ::1 and says ``host: [::1]:PORT``, as RFC 9110 requires."""
    seen: list[RawRequest] = []

    async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await read_request(reader)) is not None:
            seen.append(request)
            writer.write(_ok())
        writer.close()

    async def scenario(transport: HttptoolsTransport) -> None:
        async with serving(backend, host="::1") as url:
            response = await transport.send(_post(url))
            assert await response.read() == b"ok"
            assert seen[0].headers["host"] == url.removeprefix("http://")
            assert seen[0].headers["host"].startswith("[::1]:")

    _run(scenario)


def test_credentials_in_a_backend_url_are_sent_as_basic_auth() -> None:
    """``http://user:pa%40ss@host`` sends ``Authorization: Basic`` of the decoded pair, never the URL's."""
    seen: list[RawRequest] = []

    async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await read_request(reader)) is not None:
            seen.append(request)
            writer.write(_ok())
        writer.close()

    async def scenario(transport: HttptoolsTransport) -> None:
        async with serving(backend) as url:
            with_credentials = url.replace("http://", "http://model-user:pa%40ss@")
            response = await transport.send(_post(with_credentials))
            assert await response.read() == b"ok"
        expected = base64.b64encode(b"model-user:pa@ss").decode()
        assert seen[0].headers["authorization"] == f"Basic {expected}"
        assert seen[0].headers["host"] == url.removeprefix("http://")
        assert "model-user" not in seen[0].request_line

    _run(scenario)


def test_an_unreachable_backend_is_backend_unavailable() -> None:
    async def scenario(transport: HttptoolsTransport) -> None:
        async with serving(lambda reader, writer: asyncio.sleep(0)) as url:
            pass  # the port is free again once the server closed
        with pytest.raises(BackendUnavailableError, match="cannot be reached"):
            await transport.send(_post(url))

    _run(scenario)
