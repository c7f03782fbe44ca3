"""Fetching an issuer's signing keys over HTTP: the discovery document, then its ``jwks_uri``.

One ``httpx.AsyncClient`` serves every issuer. Each document must arrive whole within ``http_timeout``
(httpx's own timeouts bound each read, not the whole answer, so a trickling server is cut off too) and
be at most 1 MiB. Certificates are checked against the system's trusted authorities, as a private
Keycloak's are usually installed there, and proxy variables are ignored, as they were with aiohttp.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httpx
import orjson

from maas_gateway.auth.signing_keys import KeySetError, SigningKey, read_key_set
from maas_gateway.config.schema import OIDCIssuer

__all__ = ["FetchError", "KeyFetcher"]

_MAX_DOCUMENT_BYTES = 1024 * 1024


class FetchError(Exception):
    """A fetch failed; the message is a sentence fragment naming what and why."""


class KeyFetcher:
    """Discovery and JWKS fetches with one HTTP client, created on first use and closed by ``aclose``."""

    def __init__(self, http_timeout: float) -> None:
        self.http_timeout = http_timeout
        self._client: httpx.AsyncClient | None = None

    async def discover(self, issuer: OIDCIssuer) -> str:
        """The issuer's ``jwks_uri``, from a discovery document that names the issuer exactly."""
        url = issuer.discovery_url or issuer.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._get_json(url, "discovery document")
        if document.get("issuer") != issuer.issuer:
            raise FetchError(
                f"the discovery document at {url} names the issuer {document.get('issuer')!r}, "
                f"not {issuer.issuer!r}"
            )
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("http://", "https://")):
            raise FetchError(f"the discovery document at {url} has no http(s) jwks_uri")
        return jwks_uri

    async def keys(self, jwks_uri: str) -> list[SigningKey]:
        document = await self._get_json(jwks_uri, "signing keys")
        try:
            return read_key_set(document, jwks_uri)
        except KeySetError as exc:
            raise FetchError(str(exc)) from None

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self.http_timeout,
                follow_redirects=True,
                trust_env=False,
                verify=ssl.create_default_context(),
            )
        try:
            async with asyncio.timeout(self.http_timeout):
                status, body = await self._get(self._client, url)
        except (TimeoutError, httpx.TimeoutException):
            raise FetchError(f"the {what} at {url} did not arrive within {self.http_timeout:g}s") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise FetchError(f"the {what} at {url} cannot be fetched ({type(exc).__name__})") from None
        if status != 200:
            raise FetchError(f"the {what} at {url} answered HTTP {status}")
        if len(body) > _MAX_DOCUMENT_BYTES:
            raise FetchError(f"the {what} at {url} is larger than 1 MiB")
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise FetchError(f"the {what} at {url} is not JSON") from None
        if not isinstance(document, dict):
            raise FetchError(f"the {what} at {url} is not a JSON object")
        return document

    @staticmethod
    async def _get(client: httpx.AsyncClient, url: str) -> tuple[int, bytes]:
        """The status and at most 1 MiB and one byte of the body: a larger body is refused unread."""
        body = bytearray()
        async with client.stream("GET", url, headers={"accept": "application/json"}) as response:
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > _MAX_DOCUMENT_BYTES:
                    break
            return response.status_code, bytes(body)
