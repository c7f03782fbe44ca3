"""Each trusted issuer's signing keys, refreshed in the background so a slow provider stalls no token.

An issuer's keys are fetched on first use (discovery document, then ``jwks_uri``). Once older than
``cache_ttl`` they are stale: tokens keep verifying with them at once while one background fetch replaces
them, since an identity provider that hangs must not stall every request for ``http_timeout``. Only a
token naming a key id the cache lacks (the issuer may have rotated its keys) waits for a fetch, and for at
most ``unknown_kid_wait``. Fetches of one issuer never overlap, start at least ``min_refresh_interval``
apart and back off after failures (``RefreshSchedule``). Failed fetches keep the old keys, but keys older
than ``max_stale_age`` are no longer trusted. A failure is logged once, and so is the recovery.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

from maas_gateway.auth.jwks_fetch import FetchError, KeyFetcher
from maas_gateway.auth.jwks_schedule import RefreshSchedule
from maas_gateway.auth.signing_keys import SigningKey, select_key
from maas_gateway.config.durations import format_duration
from maas_gateway.config.schema import OIDCIssuer, OIDCSettings
from maas_gateway.errors import ServiceUnavailableError

__all__ = ["JWKSCache"]

logger = logging.getLogger("maas_gateway.auth")

_Fetched = Literal["fetched", "failed"]
_Outcome = Literal["fetched", "failed", "skipped", "timeout"]


@dataclass
class _IssuerState:
    schedule: RefreshSchedule
    keys: list[SigningKey] = field(default_factory=list)
    jwks_uri: str | None = None
    error: str | None = None  # why the last fetch failed; None once one succeeds
    inflight: asyncio.Task[_Fetched] | None = None
    distrust_logged: bool = False


class JWKSCache:
    """Signing keys per issuer; call ``aclose`` when done (it owns background fetches and an HTTP client)."""

    def __init__(
        self,
        *,
        cache_ttl: float,
        min_refresh_interval: float,
        http_timeout: float,
        unknown_kid_wait: float = 2.0,
        max_stale_age: float = 86400.0,
        clock: Callable[[], float] = time.monotonic,
        fetcher: KeyFetcher | None = None,
    ) -> None:
        self.cache_ttl = cache_ttl
        self.min_refresh_interval = min_refresh_interval
        self.unknown_kid_wait = unknown_kid_wait
        self.max_stale_age = max_stale_age
        self._clock = clock
        self._fetcher = fetcher or KeyFetcher(http_timeout)
        self._states: dict[str, _IssuerState] = {}

    @classmethod
    def from_settings(cls, settings: OIDCSettings) -> JWKSCache:
        return cls(
            cache_ttl=settings.jwks_cache_ttl,
            min_refresh_interval=settings.jwks_min_refresh_interval,
            http_timeout=settings.http_timeout,
            unknown_kid_wait=settings.unknown_kid_wait,
            max_stale_age=settings.jwks_max_stale_age,
        )

    async def key(self, issuer: OIDCIssuer, kid: str | None, alg: str) -> SigningKey | None:
        """The issuer's key for a token's ``kid`` and ``alg``; ``None`` if the issuer publishes none.

        Raises ``ServiceUnavailableError`` naming the issuer when the key may exist but cannot be had:
        no trusted keys were fetched in time, or the provider failed the fetch this token waited for.
        """
        state = self._state(issuer)
        now = self._clock()
        if state.schedule.trusted(now):
            if state.schedule.stale(now):
                self._start_fetch(issuer, state)  # the cached keys keep answering meanwhile
            found = select_key(state.keys, kid, alg)
            if found is not None:
                return found
        else:
            self._note_distrust(issuer, state)
        outcome = await self._await_fetch(issuer, state)
        if outcome == "fetched":
            return select_key(state.keys, kid, alg)
        if not state.schedule.trusted(self._clock()):
            raise self._unavailable(issuer, state, outcome)
        if outcome != "timeout" and state.error is not None:
            raise self._unavailable(issuer, state, outcome)  # the provider is down: the key may be new
        return None  # a fetch is under way (and slow) or was made too recently to look again

    async def aclose(self) -> None:
        tasks = [state.inflight for state in self._states.values() if state.inflight is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._fetcher.aclose()

    def _state(self, issuer: OIDCIssuer) -> _IssuerState:
        state = self._states.get(issuer.issuer)
        if state is None:
            schedule = RefreshSchedule(self.cache_ttl, self.min_refresh_interval, self.max_stale_age)
            state = self._states[issuer.issuer] = _IssuerState(schedule)
        return state

    def _start_fetch(self, issuer: OIDCIssuer, state: _IssuerState) -> asyncio.Task[_Fetched] | None:
        """The fetch under way, else a new one if the schedule allows it, else ``None``."""
        if state.inflight is None:
            now = self._clock()
            if not state.schedule.may_fetch(now):
                return None
            state.schedule.started(now)
            task = asyncio.get_running_loop().create_task(self._fetch(issuer, state))
            task.add_done_callback(partial(_fetch_done, state))
            state.inflight = task
        return state.inflight

    async def _await_fetch(self, issuer: OIDCIssuer, state: _IssuerState) -> _Outcome:
        """Join or start a fetch and wait for it, at most ``unknown_kid_wait``; it goes on regardless."""
        task = self._start_fetch(issuer, state)
        if task is None:
            return "skipped"
        try:
            # shield: a waiter giving up (or its client leaving) must not cancel the shared fetch.
            return await asyncio.wait_for(asyncio.shield(task), self.unknown_kid_wait)
        except TimeoutError:
            return "timeout"

    async def _fetch(self, issuer: OIDCIssuer, state: _IssuerState) -> _Fetched:
        try:
            # Discovery is redone on schedule and after failures, in case the jwks_uri moved.
            if state.jwks_uri is None or state.error is not None or state.schedule.stale(self._clock()):
                state.jwks_uri = await self._fetcher.discover(issuer)
            keys = await self._fetcher.keys(state.jwks_uri)
        except FetchError as exc:
            self._failed(issuer, state, str(exc))
            return "failed"
        failures = state.schedule.failures
        state.schedule.succeeded(self._clock())
        state.keys, state.error, state.distrust_logged = keys, None, False
        if failures:
            logger.warning(
                "The signing keys of %s can be fetched again after %d failed attempt(s); %d key(s) in use.",
                issuer.issuer,
                failures,
                len(keys),
            )
        else:
            logger.info("Fetched %d signing key(s) of %s.", len(keys), issuer.issuer)
        return "fetched"

    def _failed(self, issuer: OIDCIssuer, state: _IssuerState, reason: str) -> None:
        now = self._clock()
        state.schedule.failed(now)
        first, state.error = state.error is None, reason
        if not first:  # logged when the trouble began; the recovery is logged too
            logger.debug("Fetching the signing keys of %s failed again: %s.", issuer.issuer, reason)
        elif state.schedule.trusted(now):
            logger.warning(
                "Fetching the signing keys of %s failed: %s. Its %d cached key(s) stay in use until they are "
                "%s old; fetches are retried with backoff, at least %gs apart.",
                issuer.issuer,
                reason,
                len(state.keys),
                format_duration(self.max_stale_age),
                self.min_refresh_interval,
            )
        else:
            logger.warning(
                "Fetching the signing keys of %s failed: %s. Its tokens are refused (503) until a fetch "
                "succeeds; fetches are retried every %gs.",
                issuer.issuer,
                reason,
                self.min_refresh_interval,
            )

    def _note_distrust(self, issuer: OIDCIssuer, state: _IssuerState) -> None:
        if state.keys and not state.distrust_logged:
            state.distrust_logged = True
            logger.error(
                "The signing keys of %s are older than %s and no longer trusted; its tokens are refused "
                "(503) until a fetch succeeds.",
                issuer.issuer,
                format_duration(self.max_stale_age),
            )

    def _unavailable(
        self, issuer: OIDCIssuer, state: _IssuerState, outcome: _Outcome
    ) -> ServiceUnavailableError:
        if outcome == "timeout":
            reason = f"it sent none within {self.unknown_kid_wait:g}s"
        elif state.error is not None:
            reason = state.error
        else:
            reason = f"the keys last fetched are older than {format_duration(self.max_stale_age)}"
        return ServiceUnavailableError(
            f"The identity provider's signing keys cannot be fetched (issuer {issuer.issuer}): {reason}. "
            "Try again shortly.",
            code="identity_provider_unavailable",
        )


def _fetch_done(state: _IssuerState, task: asyncio.Task[_Fetched]) -> None:
    state.inflight = None
    if not task.cancelled() and task.exception() is not None:
        logger.error("Fetching signing keys failed unexpectedly.", exc_info=task.exception())
