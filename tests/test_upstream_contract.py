"""The upstream transport's contract, run against every implementation.

``httptools`` talks to the fake backend process (tests/support/fake_backend.py) over loopback;
``memory`` answers with the same behaviours from a function (tests/support/memory_backend.py). Each
test holds both to the same observable result: status, headers, body, streamed chunks, and failures
mapped to the gateway's two errors. What only sockets can show is in tests/test_upstream_httptools.py.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
import orjson
import pytest

from maas_gateway.upstream import (
    BackendConnectError,
    BackendTimeoutError,
    BackendUnavailableError,
    HttptoolsTransport,
    InMemoryTransport,
    UpstreamRequest,
    UpstreamResponse,
    UpstreamTransport,
)
from tests.support.memory_backend import MemoryBackend
from tests.support.processes import ServerProcess, free_port

CHAT = orjson.dumps({"model": "fake", "messages": [{"role": "user", "content": "Hi"}]})
READ_TIMEOUT = 1.0


@dataclass
class Backend:
    """One implementation under test, and how to ask its backend what it saw."""

    transport: UpstreamTransport
    url: str  # the fake backend's base URL; a behaviour's name is the first path segment
    unreachable_url: str
    last_headers: Callable[[], Awaitable[dict[str, str]]]


Scenario = Callable[[Backend], Awaitable[None]]


@pytest.fixture(params=["httptools", "memory"])
def run(request: pytest.FixtureRequest) -> Callable[[Scenario], None]:
    kind: str = request.param

    def runner(scenario: Scenario) -> None:
        async def main() -> None:
            if kind == "httptools":
                fake: ServerProcess = request.getfixturevalue("fake_backend")
                transport: UpstreamTransport = HttptoolsTransport(
                    connect_timeout=2, read_timeout=READ_TIMEOUT, max_connections=8
                )

                async def recorded() -> dict[str, str]:
                    async with httpx.AsyncClient() as client:
                        seen: dict[str, str] = (await client.get(fake.url + "/record/last")).json()
                        return seen

                backend = Backend(transport, fake.url, f"http://127.0.0.1:{free_port()}", recorded)
            else:
                memory = MemoryBackend()

                async def remembered() -> dict[str, str]:
                    return memory.last_headers

                transport = InMemoryTransport(memory, read_timeout=READ_TIMEOUT)
                base = "http://127.0.0.1:8001"
                backend = Backend(transport, base, base + "/unreachable", remembered)
            try:
                await scenario(backend)
            finally:
                await transport.aclose()

        asyncio.run(main())

    return runner


def _post(backend: Backend, behaviour: str, headers: list[tuple[str, str]] | None = None) -> UpstreamRequest:
    url = f"{backend.url}/{behaviour}/v1/chat/completions"
    return UpstreamRequest("POST", url, headers or [("content-type", "application/json")], CHAT)


def _content_type(response: UpstreamResponse) -> str:
    return next(value for name, value in response.headers if name == "content-type")


async def _chunks(response: UpstreamResponse) -> AsyncIterator[bytes]:
    async for chunk in response.iter_chunks():
        yield chunk


def test_a_whole_answer_has_its_status_headers_and_body(run: Callable[[Scenario], None]) -> None:
    async def scenario(backend: Backend) -> None:
        response = await backend.transport.send(_post(backend, "nousage"))
        assert response.status == 200
        assert _content_type(response).startswith("application/json")
        assert all(name == name.lower() for name, _ in response.headers)
        payload = orjson.loads(await response.read())
        assert payload["choices"][0]["message"]["content"] == "twelve chars" * 4

    run(scenario)


@pytest.mark.parametrize(("behaviour", "status"), [("error400", 400), ("error500", 500)])
def test_a_backend_error_is_an_answer_with_its_status(
    run: Callable[[Scenario], None], behaviour: str, status: int
) -> None:
    """A 4xx or 5xx is the backend's answer, not a transport failure: the pipeline decides about it."""

    async def scenario(backend: Backend) -> None:
        response = await backend.transport.send(_post(backend, behaviour))
        assert response.status == status
        assert b'"message"' in await response.read()

    run(scenario)


def test_a_stream_arrives_chunk_by_chunk_to_its_end(run: Callable[[Scenario], None]) -> None:
    async def scenario(backend: Backend) -> None:
        response = await backend.transport.send(_post(backend, "stream-nousage"))
        assert response.status == 200
        assert _content_type(response) == "text/event-stream"
        body = b"".join([chunk async for chunk in _chunks(response)])
        assert [w for w in (b'"alpha "', b'"beta "', b'"gamma"') if w in body] == [
            b'"alpha "',
            b'"beta "',
            b'"gamma"',
        ]
        assert body.endswith(b"data: [DONE]\n\n")

    run(scenario)


def test_the_backend_sees_the_request_headers_and_url_credentials(run: Callable[[Scenario], None]) -> None:
    """Headers go as given, plus ``host``, ``content-length`` and Basic auth from the URL's credentials."""

    async def scenario(backend: Backend) -> None:
        backend.url = backend.url.replace("http://", "http://model-user:s3cret@")
        headers = [("content-type", "application/json"), ("x-maas-user", "alice"), ("x-request-id", "r1")]
        response = await backend.transport.send(_post(backend, "record", headers))
        assert response.status == 200
        await response.read()
        seen = {name.lower(): value for name, value in (await backend.last_headers()).items()}
        assert seen["x-maas-user"] == "alice"
        assert seen["x-request-id"] == "r1"
        assert seen["content-length"] == str(len(CHAT))
        assert seen["host"] == backend.url.split("@")[1].removeprefix("http://")
        assert seen["authorization"] == "Basic " + base64.b64encode(b"model-user:s3cret").decode()

    run(scenario)


@pytest.mark.parametrize(
    ("behaviour", "error", "message"),
    [
        ("close", BackendUnavailableError, "closed the connection or sent a broken answer"),
        ("slow", BackendTimeoutError, "did not answer in time"),
    ],
)
def test_failures_before_the_answer_are_the_gateways_errors(
    run: Callable[[Scenario], None], behaviour: str, error: type[Exception], message: str
) -> None:
    """The request was sent, so it is not a connection failure: the gateway must not send it again."""

    async def scenario(backend: Backend) -> None:
        with pytest.raises(error, match=message) as caught:
            await backend.transport.send(_post(backend, behaviour))
        assert not isinstance(caught.value, BackendConnectError)

    run(scenario)


def test_an_unreachable_backend_is_a_connection_failure(run: Callable[[Scenario], None]) -> None:
    """Nothing could be sent: ``BackendConnectError``, a 502 ``BackendUnavailableError`` that may be
    sent to another backend."""

    async def scenario(backend: Backend) -> None:
        request = UpstreamRequest("POST", backend.unreachable_url + "/v1/chat/completions", [], CHAT)
        with pytest.raises(BackendConnectError, match="cannot be reached") as caught:
            await backend.transport.send(request)
        assert isinstance(caught.value, BackendUnavailableError)

    run(scenario)


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [("stream-break", BackendUnavailableError), ("stream-stall", BackendTimeoutError)],
)
def test_a_stream_that_breaks_off_raises_after_what_arrived(
    run: Callable[[Scenario], None], behaviour: str, error: type[Exception]
) -> None:
    """What came before the failure is delivered; then the mapped error, never a silent end."""

    async def scenario(backend: Backend) -> None:
        response = await backend.transport.send(_post(backend, behaviour))
        received: list[bytes] = []

        async def read_all() -> None:
            async for chunk in response.iter_chunks():
                received.append(chunk)

        with pytest.raises(error):
            await read_all()
        received_bytes = b"".join(received)
        assert b'"one "' in received_bytes
        assert b'"two "' in received_bytes
        assert b"[DONE]" not in received_bytes

    run(scenario)


def test_closing_a_stream_early_leaves_the_transport_usable(run: Callable[[Scenario], None]) -> None:
    """A client that leaves mid-stream closes the exchange; the next request is answered normally."""

    async def scenario(backend: Backend) -> None:
        response = await backend.transport.send(_post(backend, "stream-stall"))
        chunks = response.iter_chunks()
        assert b'"one "' in await anext(chunks)
        response.close()
        with pytest.raises(BackendUnavailableError):
            async for _ in chunks:
                pass
        again = await backend.transport.send(_post(backend, "nousage"))
        assert again.status == 200
        assert b"twelve chars" in await again.read()

    run(scenario)


def test_closing_a_finished_response_is_harmless(run: Callable[[Scenario], None]) -> None:
    """``close()`` after the body was read (the pipeline's ``finally``) touches nothing else."""

    async def scenario(backend: Backend) -> None:
        first = await backend.transport.send(_post(backend, "nousage"))
        await first.read()
        second = await backend.transport.send(_post(backend, "stream-nousage"))
        first.close()
        body = b"".join([chunk async for chunk in second.iter_chunks()])
        assert body.endswith(b"data: [DONE]\n\n")

    run(scenario)
