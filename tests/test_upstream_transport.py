"""The upstream transports against the real simulator: connection reuse and release."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson
import pytest

from maas_gateway.upstream import HttptoolsTransport, UpstreamRequest, UpstreamTransport
from tests.support.processes import ServerProcess

CHAT = orjson.dumps({"model": "simulator-model", "messages": [{"role": "user", "content": "Hi"}]})
STREAM = orjson.dumps(
    {"model": "simulator-model", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
)
TRANSPORTS: dict[str, type[HttptoolsTransport]] = {"httptools": HttptoolsTransport}


def _request(simulator: ServerProcess, body: bytes) -> UpstreamRequest:
    headers = [("content-type", "application/json")]
    return UpstreamRequest("POST", simulator.url + "/v1/chat/completions", headers, body)


def _run(kind: str, scenario: Callable[[UpstreamTransport], Awaitable[None]]) -> None:
    async def main() -> None:
        transport: UpstreamTransport = TRANSPORTS[kind](connect_timeout=2, read_timeout=5, max_connections=8)
        try:
            await scenario(transport)
        finally:
            await transport.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_closing_a_finished_response_leaves_the_next_request_alone(
    simulator: ServerProcess, kind: str
) -> None:
    """close() after a response was read is a no-op, even once its connection carries another request."""

    async def scenario(transport: UpstreamTransport) -> None:
        first = await transport.send(_request(simulator, CHAT))
        assert b'"choices"' in await first.read()
        second = await transport.send(_request(simulator, STREAM))  # reuses the idle connection
        first.close()  # late, as the pipeline does in its finally block
        body = b"".join([chunk async for chunk in second.iter_chunks()])
        assert second.status == 200
        assert body.rstrip().endswith(b"data: [DONE]")

    _run(kind, scenario)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_many_concurrent_requests_are_all_answered_whole(simulator: ServerProcess, kind: str) -> None:
    """Two hundred requests at once over at most eight connections: every answer arrives whole."""

    async def scenario(transport: UpstreamTransport) -> None:
        async def one(body: bytes) -> bytes:
            response = await transport.send(_request(simulator, body))
            try:
                return await response.read()
            finally:
                response.close()

        answers = await asyncio.gather(*(one(CHAT if i % 2 else STREAM) for i in range(200)))
        for i, answer in enumerate(answers):
            if i % 2:
                assert orjson.loads(answer)["choices"]
            else:
                assert answer.rstrip().endswith(b"data: [DONE]")

    _run(kind, scenario)


@pytest.mark.parametrize("kind", TRANSPORTS)
def test_interim_answers_are_skipped(kind: str) -> None:
    """A 100 Continue or 103 Early Hints before the real answer is not taken for the answer."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for number in range(2):
            await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(len(CHAT))
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)  # the interim answers arrive on their own
            body = b"answer %d" % number
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
        writer.close()

    async def scenario(transport: UpstreamTransport) -> None:
        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        request = UpstreamRequest("POST", f"http://127.0.0.1:{port}/v1/chat", [], CHAT)
        try:
            for number in range(2):  # the second request reuses the connection
                response = await transport.send(request)
                assert response.status == 200
                assert await response.read() == b"answer %d" % number
        finally:
            server.close()

    _run(kind, scenario)
