"""How the pollers get a URL: a ``Fetch`` function, real (``HttpFetch``, httpx) or one a test writes.

A fetch returns the status and the body, and raises ``FetchError`` (or anything else: the pollers catch it)
when there is no answer. ``HttpFetch`` keeps one ``httpx.AsyncClient`` for every backend, so scrapes every
few hundred milliseconds reuse their connections, and bounds each fetch as a whole (httpx's timeouts bound
each read, so a trickling server would not be cut off) and its body's size.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable

import httpx

from maas_gateway.balancing.backend import display_url

__all__ = ["Fetch", "FetchError", "HttpFetch"]

Fetch = Callable[[str], Awaitable[tuple[int, bytes]]]

_DEFAULT_MAX_BODY = 4 * 1024 * 1024  # a vLLM /metrics answer is tens of kilobytes


class FetchError(Exception):
    """No answer from a URL; the message says what and why, as a sentence."""


class HttpFetch:
    """A ``Fetch`` over HTTP(S); ``verify`` should be the TLS context the requests to the backends use
    (``upstream.tls.tls_context``: private CA, client certificate), so checks see what requests see.

    Credentials in a URL (``https://user:password@host``) are sent as Basic auth, as for the requests.
    """

    def __init__(
        self,
        *,
        timeout: float = 1.0,
        max_body_bytes: int = _DEFAULT_MAX_BODY,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.timeout = timeout
        self.max_body_bytes = max_body_bytes
        self._verify = verify
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, url: str) -> tuple[int, bytes]:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.timeout,
                follow_redirects=False,
                trust_env=False,
                verify=self._verify,
                # A poll round holds one connection per backend: keep them all alive, however many backends.
                limits=httpx.Limits(max_keepalive_connections=None),
            )
        shown = display_url(url)
        try:
            async with asyncio.timeout(self.timeout):
                return await self._get(self._client, url, shown)
        except (TimeoutError, httpx.TimeoutException):
            raise FetchError(f"{shown} did not answer within {self.timeout:g} s.") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            detail = str(exc).replace(url, shown) or "no detail"  # the password must not reach a log
            raise FetchError(f"{shown} cannot be fetched ({type(exc).__name__}: {detail}).") from None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _get(self, client: httpx.AsyncClient, url: str, shown: str) -> tuple[int, bytes]:
        body = bytearray()
        async with client.stream("GET", url) as response:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > self.max_body_bytes:
                    raise FetchError(f"{shown} answered more than {self.max_body_bytes} bytes.")
            return response.status_code, bytes(body)
