"""An upstream transport without sockets: each request is answered by a function, for fast tests.

The handler receives the request as a backend would (with the ``host``, ``content-length`` and, for a URL
with credentials, ``authorization`` headers the real transport adds) and returns a ``MemoryAnswer``
whose body is bytes or an async iterator of chunks (a stream). A handler simulates the network's failures
by raising them: ``ConnectionRefusedError`` (unreachable), any other ``OSError`` (connection lost), or by
taking longer than ``read_timeout``. They are mapped here, as the real transport maps its own, to
``BackendConnectError``, ``BackendUnavailableError`` and ``BackendTimeoutError``. ``close()`` on a
stream stops the handler's iterator, as a closed connection stops a real backend.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from maas_gateway.errors import BackendConnectError, BackendTimeoutError, BackendUnavailableError
from maas_gateway.upstream.base import UpstreamRequest, UpstreamResponse
from maas_gateway.upstream.target import parse_target

__all__ = ["Handler", "InMemoryTransport", "MemoryAnswer"]

_BROKEN = "The model backend closed the connection or sent a broken answer."
_SLOW = "The model backend did not answer in time."


@dataclass
class MemoryAnswer:
    status: int = 200
    headers: Sequence[tuple[str, str]] = ()
    body: bytes | AsyncIterator[bytes] = b""


Handler = Callable[[UpstreamRequest], Awaitable[MemoryAnswer]]


class _End:
    """The end of a body, or how it broke off."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error


class _MemoryResponse:
    def __init__(self, answer: MemoryAnswer, read_timeout: float) -> None:
        self.status = answer.status
        self.headers: Sequence[tuple[str, str]] = [(name.lower(), value) for name, value in answer.headers]
        self._read_timeout = read_timeout
        self._queue: asyncio.Queue[bytes | _End] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None
        self._done = False  # the reader has seen the end
        self._closed = False
        if isinstance(answer.body, bytes):
            if answer.body:
                self._queue.put_nowait(answer.body)
            self._queue.put_nowait(_End())
        else:
            self._pump = asyncio.get_running_loop().create_task(self._run(answer.body))

    async def _run(self, body: AsyncIterator[bytes]) -> None:
        try:
            async for chunk in body:
                if chunk:
                    self._queue.put_nowait(chunk)
            self._queue.put_nowait(_End())
        except TimeoutError:  # an OSError too: first
            self._queue.put_nowait(_End(BackendTimeoutError(_SLOW)))
        except OSError:
            self._queue.put_nowait(_End(BackendUnavailableError(_BROKEN)))
        except Exception as exc:  # noqa: BLE001 -- a handler's own bug goes to the reader, who raises it
            self._queue.put_nowait(_End(exc))

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.iter_chunks()])

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        try:
            while not self._done:
                try:
                    async with asyncio.timeout(self._read_timeout):
                        item = await self._queue.get()
                except TimeoutError:
                    raise BackendTimeoutError(_SLOW) from None
                if isinstance(item, _End):
                    self._done = True
                    if item.error is not None:
                        raise item.error
                    return
                yield item
        finally:
            self.close()

    def close(self) -> None:
        if self._done or self._closed:
            return
        self._closed = True
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()  # the handler's stream stops, as a backend's does on a closed connection
        # What arrived before is still read, then the failure: as from a real connection's buffer.
        self._queue.put_nowait(_End(BackendUnavailableError("The request was abandoned.")))


@dataclass
class InMemoryTransport:
    """Answers every request with ``handler``; ``requests`` keeps what was sent, in order."""

    handler: Handler
    read_timeout: float = 300.0
    requests: list[UpstreamRequest] = field(default_factory=list)
    _open: weakref.WeakSet[_MemoryResponse] = field(default_factory=weakref.WeakSet)

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        target = parse_target(request.url)
        headers = [("host", target.host_header), *request.headers]
        if target.authorization is not None:
            headers.append(("authorization", target.authorization))
        headers.append(("content-length", str(len(request.body))))
        seen = UpstreamRequest(request.method, request.url, headers, request.body)
        self.requests.append(seen)
        try:
            async with asyncio.timeout(self.read_timeout):
                answer = await self.handler(seen)
        except TimeoutError:  # an OSError too: first
            raise BackendTimeoutError(_SLOW) from None
        except ConnectionRefusedError:
            raise BackendConnectError("The model backend cannot be reached.") from None
        except OSError:
            raise BackendUnavailableError(_BROKEN) from None
        response = _MemoryResponse(answer, self.read_timeout)
        self._open.add(response)
        return response

    async def aclose(self) -> None:
        for response in list(self._open):
            response.close()
