"""The one interface the gateway uses to talk to model backends, and its aiohttp implementation.

Upstream exceptions are mapped here, once, at the edge: callers only ever see ``BackendUnavailableError``
(502: refused, reset, closed early, malformed), ``BackendTimeoutError`` (504) or a response.
aiohttp's client is used for its pooled keep-alive connections and low per-request overhead
(see docs/decisions.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from maas_gateway.errors import BackendTimeoutError, BackendUnavailableError

__all__ = ["AiohttpTransport", "UpstreamRequest", "UpstreamResponse", "UpstreamTransport"]


@dataclass(slots=True)  # per request: a frozen dataclass costs 4x as much to build
class UpstreamRequest:
    method: str
    url: str
    headers: Sequence[tuple[str, str]]
    body: bytes


class UpstreamResponse(Protocol):
    status: int
    headers: Sequence[tuple[str, str]]

    async def read(self) -> bytes:
        """The whole body."""
        ...

    def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as the backend sends it, chunk by chunk."""
        ...

    def close(self) -> None:
        """Abort the exchange (the backend sees the connection close) or release it when done."""
        ...


class UpstreamTransport(Protocol):
    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """Send ``request`` and return once the status line and headers have arrived."""
        ...

    async def aclose(self) -> None: ...


class _AiohttpResponse:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: Sequence[tuple[str, str]] = [(k.lower(), v) for k, v in response.headers.items()]

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except Exception as exc:
            raise _map(exc) from exc
        finally:
            self._response.release()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except Exception as exc:
            raise _map(exc) from exc
        finally:
            self._response.release()

    def close(self) -> None:
        self._response.close()


class AiohttpTransport:
    """A pooled aiohttp client session; create it inside the running event loop."""

    def __init__(self, *, connect_timeout: float, read_timeout: float, max_connections: int) -> None:
        connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=0, ttl_dns_cache=60)
        timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=read_timeout)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),  # a proxy must not keep one client's cookies for another
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
        )

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        try:
            response = await self._session.request(
                request.method, request.url, data=request.body, headers=request.headers
            )
        except Exception as exc:
            raise _map(exc) from exc
        return _AiohttpResponse(response)

    async def aclose(self) -> None:
        await self._session.close()


def _map(exc: BaseException) -> Exception:
    """Translate an aiohttp or socket failure into the gateway's error for it."""
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return BackendTimeoutError("The model backend did not answer in time.")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return BackendUnavailableError("The model backend cannot be reached.")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return BackendUnavailableError("The model backend closed the connection or sent a broken answer.")
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))
