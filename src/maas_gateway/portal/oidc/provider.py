"""Talking to an identity provider for the portal's sign-in: its endpoints, and the code for an ID token.

The endpoints come from the same discovery document the gateway reads for signing keys (``discovery_url``
or ``<issuer>/.well-known/openid-configuration``), which must name the configured issuer; they are kept
for ``oidc.jwks_cache_ttl``. Requests use the gateway's rules for key fetches: ``oidc.http_timeout`` for
the whole answer, the system's trusted authorities, no proxy variables, at most 1 MiB. The client secret
is read from the environment variable the issuer names (``portal_client_secret_env``) when it is needed,
so it is never in a configuration file, and sent with HTTP Basic authentication (RFC 6749 2.3.1).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from maas_gateway.config.schema import OIDCIssuer, OIDCSettings

__all__ = ["Endpoints", "IdentityProviders", "SignInFailed"]

_MAX_BYTES = 1024 * 1024


class SignInFailed(Exception):
    """A sign-in through an identity provider failed; ``message`` is a whole sentence for the person."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True, slots=True)
class Endpoints:
    authorization: str
    token: str


class IdentityProviders:
    """The providers' endpoints (cached) and the code exchange; holds no connection between uses."""

    def __init__(
        self,
        environ: Mapping[str, str] = os.environ,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._environ = environ
        self._clock = clock
        self._endpoints: dict[str, tuple[float, Endpoints]] = {}

    async def endpoints(self, issuer: OIDCIssuer, settings: OIDCSettings) -> Endpoints:
        url = issuer.discovery_url or issuer.issuer.rstrip("/") + "/.well-known/openid-configuration"
        cached = self._endpoints.get(url)
        if cached is not None and self._clock() - cached[0] < settings.jwks_cache_ttl:
            return cached[1]
        status, document = await self._request("GET", url, settings, issuer)
        if status != 200 or document.get("issuer") != issuer.issuer:
            raise _unreachable(issuer)
        authorization = _http_url(document.get("authorization_endpoint"))
        token = _http_url(document.get("token_endpoint"))
        if authorization is None or token is None:
            raise _unreachable(issuer)
        found = Endpoints(authorization, token)
        self._endpoints[url] = (self._clock(), found)
        return found

    def client_secret(self, issuer: OIDCIssuer) -> str | None:
        """The issuer's client secret from its environment variable; ``None`` for a public client."""
        if issuer.portal_client_secret_env is None:
            return None
        secret = self._environ.get(issuer.portal_client_secret_env)
        if not secret:
            raise SignInFailed(
                f"Sign-in with {issuer.portal_label} is not set up completely on this gateway (its client "
                "secret is missing). Tell an administrator.",
                status=503,
            )
        return secret

    async def exchange(
        self, issuer: OIDCIssuer, settings: OIDCSettings, code: str, redirect_uri: str, verifier: str
    ) -> str:
        """The ID token for ``code`` (with the PKCE ``verifier`` it was requested with)."""
        assert issuer.portal_client_id is not None
        endpoints = await self.endpoints(issuer, settings)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            "client_id": issuer.portal_client_id,
        }
        secret = self.client_secret(issuer)
        auth = None
        if secret is not None:  # RFC 6749 2.3.1: both parts form-encoded before Basic's base64
            auth = httpx.BasicAuth(quote(issuer.portal_client_id, safe=""), quote(secret, safe=""))
        status, answer = await self._request("POST", endpoints.token, settings, issuer, form=form, auth=auth)
        if status != 200:
            error = answer.get("error")
            named = f" ({error[:60]})" if isinstance(error, str) and error else ""
            raise SignInFailed(
                f"{issuer.portal_label} did not accept this sign-in{named}: the code may have been used "
                "already or have expired. Start again from the sign-in page."
            )
        id_token = answer.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise SignInFailed(
                f"{issuer.portal_label} answered without an ID token, so nobody was signed in."
            )
        return id_token

    async def _request(
        self,
        method: str,
        url: str,
        settings: OIDCSettings,
        issuer: OIDCIssuer,
        *,
        form: dict[str, str] | None = None,
        auth: httpx.BasicAuth | None = None,
    ) -> tuple[int, dict[str, Any]]:
        timeout = settings.http_timeout
        try:
            async with (
                httpx.AsyncClient(
                    timeout=timeout, trust_env=False, verify=ssl.create_default_context()
                ) as client,
                asyncio.timeout(timeout),
                client.stream(
                    method, url, data=form, auth=auth, headers={"accept": "application/json"}
                ) as response,
            ):
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > _MAX_BYTES:
                        raise _unreachable(issuer)
                status = response.status_code
        except (TimeoutError, httpx.HTTPError, httpx.InvalidURL):
            raise _unreachable(issuer) from None
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            document = None
        return status, document if isinstance(document, dict) else {}


def _http_url(value: object) -> str | None:
    return value if isinstance(value, str) and value.startswith(("http://", "https://")) else None


def _unreachable(issuer: OIDCIssuer) -> SignInFailed:
    return SignInFailed(
        f"{issuer.portal_label} cannot be reached or answered in a way this gateway does not understand. "
        "Try again in a moment.",
        status=502,
    )
