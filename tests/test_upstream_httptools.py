"""What only the real transport does: sockets, framing on the wire, reuse, back-pressure, TLS, expiry.

Each backend here is written byte by byte in the test's own event loop (``tests/support/raw_backend.py``),
since these are the behaviours a well-behaved server never shows.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from maas_gateway.upstream import (
    BackendUnavailableError,
    HttptoolsTransport,
    UpstreamRequest,
    tls_context,
)
from tests.support.certificates import PrivateCA
from tests.support.raw_backend import RawRequest, read_request, serving

BODY = b'{"model":"m"}'
Scenario = Callable[[HttptoolsTransport], Awaitable[None]]


def _run(scenario: Scenario, **options: Any) -> None:
    async def main() -> None:
        settings = {"connect_timeout": 2.0, "read_timeout": 5.0, "max_connections": 8, **options}
        transport = HttptoolsTransport(**settings)
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


async def _answer_every_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await read_request(reader) is not None:
        writer.write(_ok())


def _server_tls(ca: PrivateCA, *, client_ca: PrivateCA | None = None) -> ssl.SSLContext:
    files = ca.issue("backend")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert, files.key)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=client_ca.cert_path)
    return context


def test_an_https_backend_of_a_private_ca_is_trusted_with_the_ca_bundle(tmp_path: Path) -> None:
    """With ``upstream_ca_bundle`` the backend's certificate verifies; without it, it does not."""
    ca = PrivateCA(tmp_path)

    async def scenario(transport: HttptoolsTransport) -> None:
        async with serving(_answer_every_request, tls=_server_tls(ca)) as url:
            assert url.startswith("https://127.0.0.1:")
            response = await transport.send(_post(url))
            assert response.status == 200
            assert await response.read() == b"ok"
            untrusting = HttptoolsTransport(connect_timeout=2, read_timeout=5, max_connections=1)
            try:
                with pytest.raises(BackendUnavailableError, match="cannot be reached"):
                    await untrusting.send(_post(url))
            finally:
                await untrusting.aclose()

    _run(scenario, tls=tls_context(ca_bundle=str(ca.cert_path)))


def test_a_client_certificate_is_presented_to_a_backend_that_asks_for_one(tmp_path: Path) -> None:
    """Mutual TLS: the backend refuses a gateway without a certificate of the clients' CA."""
    ca = PrivateCA(tmp_path, "servers")
    clients = PrivateCA(tmp_path, "clients")
    gateway = clients.issue("gateway", client=True)
    with_certificate = tls_context(
        ca_bundle=str(ca.cert_path), client_cert=str(gateway.cert), client_key=str(gateway.key)
    )

    async def scenario(transport: HttptoolsTransport) -> None:
        async with serving(_answer_every_request, tls=_server_tls(ca, client_ca=clients)) as url:
            response = await transport.send(_post(url))
            assert await response.read() == b"ok"
            only_trusting = tls_context(ca_bundle=str(ca.cert_path))
            anonymous = HttptoolsTransport(
                connect_timeout=2, read_timeout=5, max_connections=1, tls=only_trusting
            )
            try:
                with pytest.raises(BackendUnavailableError):
                    await anonymous.send(_post(url))  # TLS 1.3: refused after the handshake, not in it
            finally:
                await anonymous.aclose()

    _run(scenario, tls=with_certificate)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("ca_bundle", "The CA bundle {missing} cannot be used: No such file or directory."),
        ("client_cert", "The client certificate {missing} cannot be used: No such file or directory."),
    ],
)
def test_unusable_tls_files_are_named_in_a_whole_sentence(
    tmp_path: Path, setting: str, expected: str
) -> None:
    missing = str(tmp_path / "missing.pem")
    with pytest.raises(ValueError, match="cannot be used") as raised:
        tls_context(**{setting: missing})
    assert str(raised.value) == expected.format(missing=missing)


def test_idle_connections_are_closed_after_the_idle_timeout() -> None:
    """A connection unused for ``idle_timeout`` is closed by the gateway; the next request opens one."""
    connections: list[asyncio.Event] = []

    async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        closed = asyncio.Event()
        connections.append(closed)
        try:
            await _answer_every_request(reader, writer)
        finally:
            closed.set()  # read_request saw the end of the stream: the gateway closed it

    async def scenario(transport: HttptoolsTransport) -> None:
        async with serving(backend) as url:
            for _ in range(2):  # back to back: one connection, kept
                assert await (await transport.send(_post(url))).read() == b"ok"
            assert len(connections) == 1
            await asyncio.wait_for(connections[0].wait(), timeout=2)
            assert await (await transport.send(_post(url))).read() == b"ok"
            assert len(connections) == 2

    _run(scenario, idle_timeout=0.2)
