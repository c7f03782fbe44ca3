"""Each trusted issuer's signing keys: discovery, JWKS fetches, caching and a bounded refresh rate.

An issuer's keys are fetched on first use (discovery document, then ``jwks_uri``) and kept for
``cache_ttl``. A token naming a key id that is not in the cache triggers a refresh, because issuers rotate
their keys; refreshes of one issuer are at least ``min_refresh_interval`` apart, so tokens with made-up key
ids cannot make the gateway hammer the identity provider, and concurrent refreshes share one fetch.
Symmetric (``oct``) keys are never kept: only asymmetric signatures prove who issued a token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import aiohttp
import orjson
from jwt import PyJWK
from jwt.exceptions import PyJWTError

from maas_gateway.config.schema import OIDCIssuer, OIDCSettings
from maas_gateway.errors import ServiceUnavailableError

__all__ = ["JWKSCache", "SigningKey", "compatible", "select_key"]

logger = logging.getLogger("maas_gateway.auth")

_MAX_DOCUMENT_BYTES = 1024 * 1024
# Which key types (and curves) can verify which algorithms; HMAC is deliberately absent.
_KEY_TYPES: dict[str, tuple[str, str | None]] = {
    **dict.fromkeys(("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"), ("RSA", None)),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", None),
}


@dataclass
class SigningKey:
    """One published public key, with the verifier objects built for it so far (one per algorithm)."""

    kid: str | None
    jwk: dict[str, Any]
    _built: dict[str, PyJWK] = field(default_factory=dict)

    def for_algorithm(self, alg: str) -> PyJWK:
        built = self._built.get(alg)
        if built is None:
            built = self._built[alg] = PyJWK(self.jwk, algorithm=alg)
        return built


def compatible(jwk: dict[str, Any], alg: str) -> bool:
    """Whether ``jwk`` can verify signatures made with ``alg`` (never true for HMAC or ``none``)."""
    expected = _KEY_TYPES.get(alg)
    if expected is None or jwk.get("use", "sig") != "sig":
        return False
    kty, crv = expected
    if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
        return False
    return jwk.get("alg") in (None, alg)


def select_key(keys: list[SigningKey], kid: str | None, alg: str) -> SigningKey | None:
    """The key a token with header ``kid``/``alg`` must be verified with, or ``None``.

    With a ``kid`` the key must carry that id; without one (some providers omit it) the issuer must
    publish exactly one key that fits the algorithm.
    """
    if kid is not None:
        return next((key for key in keys if key.kid == kid and compatible(key.jwk, alg)), None)
    candidates = [key for key in keys if compatible(key.jwk, alg)]
    return candidates[0] if len(candidates) == 1 else None


_Outcome = Literal["fetched", "failed", "skipped"]


@dataclass
class _IssuerState:
    keys: list[SigningKey] = field(default_factory=list)
    jwks_uri: str | None = None
    fetched_at: float | None = None  # monotonic time of the last successful fetch
    attempted_at: float | None = None  # of the last attempt, successful or not
    error: str | None = None  # why the last attempt failed
    inflight: asyncio.Task[str | None] | None = None


class _FetchError(Exception):
    """A fetch failed; the message is a sentence fragment naming what and why."""


class JWKSCache:
    """Signing keys per issuer, fetched lazily with one ``aiohttp`` session (closed by ``aclose``)."""

    def __init__(
        self,
        *,
        cache_ttl: float,
        min_refresh_interval: float,
        http_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache_ttl = cache_ttl
        self.min_refresh_interval = min_refresh_interval
        self.http_timeout = http_timeout
        self._clock = clock
        self._states: dict[str, _IssuerState] = {}
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: OIDCSettings) -> JWKSCache:
        return cls(
            cache_ttl=settings.jwks_cache_ttl,
            min_refresh_interval=settings.jwks_min_refresh_interval,
            http_timeout=settings.http_timeout,
        )

    async def key(self, issuer: OIDCIssuer, kid: str | None, alg: str) -> SigningKey | None:
        """The issuer's key for a token's ``kid`` and ``alg``; ``None`` if the issuer publishes none.

        Raises ``ServiceUnavailableError`` when the keys are needed but cannot be fetched.
        """
        state = self._states.setdefault(issuer.issuer, _IssuerState())
        outcome: _Outcome = "skipped"
        if state.fetched_at is None or self._clock() - state.fetched_at >= self.cache_ttl:
            outcome = await self._refresh(issuer, state)
            if outcome != "fetched" and not state.keys:
                raise _unavailable(state.error)  # stale keys, if any, serve while the provider is down
        found = select_key(state.keys, kid, alg)
        if found is not None:
            return found
        if outcome == "skipped":  # an unknown key id: the issuer may have rotated its keys since
            outcome = await self._refresh(issuer, state)
            if outcome == "fetched":
                return select_key(state.keys, kid, alg)
        if outcome == "failed":
            raise _unavailable(state.error)
        return None

    async def aclose(self) -> None:
        tasks = [state.inflight for state in self._states.values() if state.inflight is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _recently_attempted(self, state: _IssuerState) -> bool:
        return (
            state.attempted_at is not None and self._clock() - state.attempted_at < self.min_refresh_interval
        )

    async def _refresh(self, issuer: OIDCIssuer, state: _IssuerState) -> _Outcome:
        """Fetch the keys unless fetched too recently; join a fetch already under way."""
        if state.inflight is None:
            if self._recently_attempted(state):
                return "skipped"
            state.attempted_at = self._clock()
            state.inflight = asyncio.get_running_loop().create_task(self._fetch(issuer, state))
            state.inflight.add_done_callback(lambda task: _fetch_done(state, task))
        error = await asyncio.shield(state.inflight)
        return "fetched" if error is None else "failed"

    async def _fetch(self, issuer: OIDCIssuer, state: _IssuerState) -> str | None:
        try:
            expired = state.fetched_at is None or self._clock() - state.fetched_at >= self.cache_ttl
            if state.jwks_uri is None or expired or state.error is not None:
                state.jwks_uri = await self._jwks_uri(issuer)
            document = await self._get_json(state.jwks_uri, "signing keys")
            state.keys = _signing_keys(document, state.jwks_uri)
        except _FetchError as exc:
            state.error = str(exc)
            logger.warning("Fetching the signing keys of %s failed: %s.", issuer.issuer, exc)
            return state.error
        state.fetched_at = self._clock()
        state.error = None
        logger.info("Fetched %d signing key(s) of %s.", len(state.keys), issuer.issuer)
        return None

    async def _jwks_uri(self, issuer: OIDCIssuer) -> str:
        url = issuer.discovery_url or issuer.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._get_json(url, "discovery document")
        if document.get("issuer") != issuer.issuer:
            raise _FetchError(
                f"the discovery document at {url} names the issuer {document.get('issuer')!r}, "
                f"not {issuer.issuer!r}"
            )
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith(("http://", "https://")):
            raise _FetchError(f"the discovery document at {url} has no http(s) jwks_uri")
        return jwks_uri

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.http_timeout))
        try:
            async with self._session.get(url, headers={"accept": "application/json"}) as response:
                body = await response.content.read(_MAX_DOCUMENT_BYTES + 1)
                status = response.status
        except TimeoutError:
            raise _FetchError(f"the {what} at {url} did not arrive within {self.http_timeout:g}s") from None
        except aiohttp.ClientError as exc:
            raise _FetchError(f"the {what} at {url} cannot be fetched ({type(exc).__name__})") from None
        if status != 200:
            raise _FetchError(f"the {what} at {url} answered HTTP {status}")
        if len(body) > _MAX_DOCUMENT_BYTES:
            raise _FetchError(f"the {what} at {url} is larger than 1 MiB")
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise _FetchError(f"the {what} at {url} is not JSON") from None
        if not isinstance(document, dict):
            raise _FetchError(f"the {what} at {url} is not a JSON object")
        return document


def _fetch_done(state: _IssuerState, task: asyncio.Task[str | None]) -> None:
    state.inflight = None
    if not task.cancelled() and task.exception() is not None:
        logger.error("Fetching signing keys failed unexpectedly.", exc_info=task.exception())


def _signing_keys(document: dict[str, Any], url: str) -> list[SigningKey]:
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise _FetchError(f"the key set at {url} has no 'keys' list")
    keys = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") not in ("RSA", "EC", "OKP"):
            continue  # symmetric or unknown key types never verify tokens here
        kid = entry.get("kid")
        key = SigningKey(kid if isinstance(kid, str) else None, entry)
        algorithm = _default_algorithm(entry)
        try:
            if algorithm is None:
                raise ValueError("no supported algorithm fits the key")
            key.for_algorithm(algorithm)
        except (PyJWTError, ValueError, TypeError):
            logger.warning("Ignoring an unusable key (kid %r) published at %s.", key.kid, url)
            continue
        keys.append(key)
    return keys


def _default_algorithm(jwk: dict[str, Any]) -> str | None:
    declared = jwk.get("alg")
    if isinstance(declared, str):
        return declared if declared in _KEY_TYPES else None
    fitting = (
        alg for alg, (kty, crv) in _KEY_TYPES.items() if kty == jwk["kty"] and crv in (None, jwk.get("crv"))
    )
    return next(fitting, None)


def _unavailable(reason: str | None) -> ServiceUnavailableError:
    detail = f": {reason}" if reason else ""
    return ServiceUnavailableError(
        f"The identity provider's signing keys cannot be fetched{detail}. Try again shortly.",
        code="identity_provider_unavailable",
    )
