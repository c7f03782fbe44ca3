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

import orjson
import pytest

from maas_gateway.upstream import (
    BackendUnavailableError,
    HttptoolsTransport,
    UpstreamRequest,
    tls_context,
)
from tests.support.certificates import PrivateCA
from tests.support.processes import ServerProcess
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


def _recording(
    seen: list[RawRequest],
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A backend that answers every request ``ok`` and keeps the requests in ``seen``."""

    async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (request := await read_request(reader)) is not None:
            seen.append(request)
            writer.write(_ok())
        writer.close()

    return backend


def _post(url: str) -> UpstreamRequest:
    return UpstreamRequest("POST", url + "/v1/chat/completions", [("content-type", "application/json")], BODY)


def test_an_ipv6_backend_gets_its_address_in_brackets_in_the_host_header() -> None:
    """``http://[::1]:PORT`` connects to ::1 and says ``host: [::1]:PORT``, as RFC 9110 requires."""
    seen: list[RawRequest] = []

    backend = _recording(seen)

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

    backend = _recording(seen)

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


def test_a_reused_connection_the_backend_closed_is_retried_once_on_a_new_one() -> None:
    """A backend may close an idle connection just as it is reused; nothing was processed, so retry."""
    per_connection: list[int] = []

    async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        per_connection.append(0)
        index = len(per_connection) - 1
        while await read_request(reader) is not None:
            per_connection[index] += 1
            if per_connection[index] == 2:
                return  # closes without a byte: as a keep-alive timeout racing the request would
            writer.write(_ok())

    async def scenario(transport: HttptoolsTransport) -> None:
        async with serving(backend) as url:
            assert await (await transport.send(_post(url))).read() == b"ok"
            assert await (await transport.send(_post(url))).read() == b"ok"
        assert per_connection == [2, 1]

    _run(scenario)


def test_a_new_connection_closed_without_an_answer_is_not_retried() -> None:
    """A request that makes a backend hang up may have crashed it: it is not sent again."""
    requests: list[RawRequest] = []

    async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if (request := await read_request(reader)) is not None:
            requests.append(request)

    async def scenario(transport: HttptoolsTransport) -> None:
        async with serving(backend) as url:
            with pytest.raises(BackendUnavailableError, match="closed the connection"):
                await transport.send(_post(url))
        assert len(requests) == 1

    _run(scenario)


def test_a_body_ended_by_the_connection_closing_is_read_whole() -> None:
    """Without Content-Length or chunks the body ends when the backend closes; that connection is done."""
    connections: list[int] = []

    async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nfirst ")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"second")
        await writer.drain()  # the handler's end closes the connection: the end of the body

    async def scenario(transport: HttptoolsTransport) -> None:
        async with serving(backend) as url:
            for _ in range(2):
                response = await transport.send(_post(url))
                assert await response.read() == b"first second"
        assert len(connections) == 2

    _run(scenario)


def test_a_chunked_answer_arrives_chunk_by_chunk_and_keeps_the_connection() -> None:
    connections: list[int] = []

    async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while await read_request(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            for part in (b"data: 1\n\n", b"data: 2\n\n", b"data: [DONE]\n\n"):
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                await writer.drain()
                await asyncio.sleep(0.03)
            writer.write(b"0\r\n\r\n")

    async def scenario(transport: HttptoolsTransport) -> None:
        async with serving(backend) as url:
            for _ in range(2):
                response = await transport.send(_post(url))
                chunks = [chunk async for chunk in response.iter_chunks()]
                assert chunks == [b"data: 1\n\n", b"data: 2\n\n", b"data: [DONE]\n\n"]
        assert len(connections) == 1

    _run(scenario)


def test_a_slow_reader_makes_the_backend_wait_instead_of_filling_memory() -> None:
    """Back-pressure: past 1 MiB waiting for the reader, the transport stops reading from the backend."""
    size = 32 * 1024 * 1024
    all_sent = asyncio.Event()

    async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        writer.write(b"x" * size)
        await writer.drain()
        all_sent.set()

    async def scenario(transport: HttptoolsTransport) -> None:
        async with serving(backend) as url:
            response = await transport.send(_post(url))
            chunks = response.iter_chunks()
            received = len(await anext(chunks))
            await asyncio.sleep(0.5)  # a client that does not take what came
            assert not all_sent.is_set(), "the whole body was read while nobody took it"
            async for chunk in chunks:
                received += len(chunk)
            assert received == size
            await asyncio.wait_for(all_sent.wait(), timeout=2)

    _run(scenario)


def test_many_concurrent_requests_are_all_answered_whole(simulator: ServerProcess) -> None:
    """Two hundred requests at once over at most eight connections: every answer arrives whole."""
    chat = b'{"model":"simulator-model","messages":[{"role":"user","content":"Hi"}]}'
    stream = chat[:-1] + b',"stream":true}'

    async def scenario(transport: HttptoolsTransport) -> None:
        async def one(body: bytes) -> bytes:
            request = UpstreamRequest("POST", simulator.url + "/v1/chat/completions", [], body)
            response = await transport.send(request)
            try:
                return await response.read()
            finally:
                response.close()

        answers = await asyncio.gather(*(one(chat if i % 2 else stream) for i in range(200)))
        for i, answer in enumerate(answers):
            if i % 2:
                assert orjson.loads(answer)["choices"]
            else:
                assert answer.rstrip().endswith(b"data: [DONE]")

    _run(scenario)


def test_interim_answers_are_skipped() -> None:
    """A 100 Continue or 103 Early Hints before the real answer is not taken for the answer."""

    async def backend(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for number in range(2):
            await read_request(reader)
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)  # the interim answers arrive on their own
            writer.write(_ok(b"answer %d" % number))
            await writer.drain()

    async def scenario(transport: HttptoolsTransport) -> None:
        async with serving(backend) as url:
            for number in range(2):  # the second request reuses the connection
                response = await transport.send(_post(url))
                assert response.status == 200
                assert await response.read() == b"answer %d" % number

    _run(scenario)
