"""The upstream transports against the real simulator: connection reuse and release."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import orjson
import pytest

from maas_gateway.proxy.httptools_transport import HttptoolsTransport
from maas_gateway.proxy.upstream import AiohttpTransport, UpstreamRequest, UpstreamTransport
from tests.support.processes import ServerProcess

CHAT = orjson.dumps({"model": "simulator-model", "messages": [{"role": "user", "content": "Hi"}]})
STREAM = orjson.dumps(
    {"model": "simulator-model", "messages": [{"role": "user", "content": "Hi"}], "stream": True}
)
TRANSPORTS: dict[str, type[HttptoolsTransport] | type[AiohttpTransport]] = {
    "httptools": HttptoolsTransport,
    "aiohttp": AiohttpTransport,
}


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
