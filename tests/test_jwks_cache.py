"""The JWKS cache's refresh policy with an injected clock and a scripted key source (no network): stale
keys answer at once while one background fetch runs, unknown key ids wait a bounded time, failures keep
trusted keys, back off, and are logged once, and so is the recovery."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import ValidationError

from maas_gateway.auth.jwks import JWKSCache
from maas_gateway.auth.jwks_fetch import FetchError, KeyFetcher
from maas_gateway.auth.jwks_schedule import RefreshSchedule
from maas_gateway.auth.signing_keys import SigningKey
from maas_gateway.config.schema import OIDCIssuer, OIDCSettings
from maas_gateway.errors import ServiceUnavailableError
from tests.support.clock import FakeClock

ISSUER = OIDCIssuer(issuer="https://idp.example/realms/maas", audience="maas-gateway", default_tier="free")
_PUBLIC = RSAAlgorithm.to_jwk(
    rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(), as_dict=True
)


def _key(kid: str) -> SigningKey:
    return SigningKey(kid, {**_PUBLIC, "kid": kid})


class _ScriptedSource(KeyFetcher):
    """Publishes ``kids``; while ``gate`` is clear every key fetch hangs; ``down`` makes fetches fail."""

    def __init__(self, *kids: str) -> None:
        super().__init__(http_timeout=1)
        self.kids = list(kids)
        self.gate = asyncio.Event()
        self.gate.set()
        self.down = False
        self.fetches = 0

    async def discover(self, issuer: OIDCIssuer) -> str:
        return issuer.issuer + "/jwks"

    async def keys(self, jwks_uri: str) -> list[SigningKey]:
        self.fetches += 1
        await self.gate.wait()
        if self.down:
            raise FetchError(f"the signing keys at {jwks_uri} answered HTTP 502")
        return [_key(kid) for kid in self.kids]


Check = Callable[[JWKSCache, _ScriptedSource, FakeClock], Awaitable[None]]


def _run(check: Check, source: _ScriptedSource | None = None, **settings: float) -> None:
    async def main() -> None:
        scripted = source or _ScriptedSource("k1")
        clock = FakeClock(1000.0)
        options = {"cache_ttl": 60.0, "min_refresh_interval": 5.0, "http_timeout": 1.0, **settings}
        cache = JWKSCache(clock=clock, fetcher=scripted, **options)
        try:
            await check(cache, scripted, clock)
        finally:
            scripted.gate.set()
            await cache.aclose()

    asyncio.run(main())


async def _settle() -> None:
    """Let background fetches that are free to finish do so."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_schedule_backs_off_only_while_trusted_keys_serve() -> None:
    """Fetches start `min_refresh_interval` apart; failures double the wait up to `cache_ttl` while keys are
    trusted, counted from the failure; without trusted keys the wait stays one interval."""
    schedule = RefreshSchedule(cache_ttl=60, min_refresh_interval=5, max_stale_age=600)
    assert schedule.stale(0)
    assert not schedule.trusted(0)
    assert schedule.may_fetch(0)
    schedule.started(0)
    schedule.succeeded(1)
    assert not schedule.stale(60)
    assert schedule.stale(61)
    assert schedule.trusted(600)
    assert not schedule.trusted(601)
    assert not schedule.may_fetch(4.9)
    assert schedule.may_fetch(5)
    waits = []
    for _ in range(6):
        schedule.started(100)
        schedule.failed(103)
        waits.append(schedule.retry_delay(103))
    assert waits == [5, 10, 20, 40, 60, 60]
    assert not schedule.may_fetch(162.9)
    assert schedule.may_fetch(163)
    assert schedule.retry_delay(601) == 5  # the keys are no longer trusted: recover fast
    schedule.succeeded(700)
    assert schedule.retry_delay(700) == 5


def test_stale_keys_answer_at_once_while_one_background_fetch_runs() -> None:
    """Past `cache_ttl`, known key ids are served from the cache without waiting, even while the provider
    hangs; one fetch runs in the background for all of them, and its keys replace the old ones."""

    async def check(cache: JWKSCache, source: _ScriptedSource, clock: FakeClock) -> None:
        assert await cache.key(ISSUER, "k1", "RS256") is not None
        source.gate.clear()
        source.kids = ["k1", "k2"]
        clock.now += 61
        async with asyncio.timeout(0.5):
            found = await asyncio.gather(*(cache.key(ISSUER, "k1", "RS256") for _ in range(20)))
        assert all(key is not None and key.kid == "k1" for key in found)
        assert source.fetches == 2
        source.gate.set()
        await _settle()
        assert (await cache.key(ISSUER, "k2", "RS256")) is not None
        assert source.fetches == 2, "the new key came with the background fetch"

    _run(check)


def test_unknown_kid_waits_at_most_unknown_kid_wait() -> None:
    """A key id the cache lacks waits for the fetch under way and gets the rotated key if it comes in time;
    if the fetch hangs, it gives up after `unknown_kid_wait` and is unknown (401) while the fetch goes on,
    and a later token finds the rotated key. With no keys ever fetched it is a 503. No durations are
    measured: the outer 5 s timeout only turns a hang, the failure mode, into a failure."""

    async def waits(cache: JWKSCache, source: _ScriptedSource, clock: FakeClock) -> None:
        assert await cache.key(ISSUER, "k1", "RS256") is not None
        clock.now += 5
        source.gate.clear()
        source.kids = ["k2"]
        waiter = asyncio.ensure_future(cache.key(ISSUER, "k2", "RS256"))
        await _settle()
        assert not waiter.done(), "the token waits for the fetch under way"
        source.gate.set()
        found = await waiter
        assert found is not None
        assert found.kid == "k2"
        assert source.fetches == 2

    _run(waits, unknown_kid_wait=60)

    async def gives_up(cache: JWKSCache, source: _ScriptedSource, clock: FakeClock) -> None:
        assert await cache.key(ISSUER, "k1", "RS256") is not None
        clock.now += 5
        source.gate.clear()
        source.kids = ["k2"]
        async with asyncio.timeout(5):
            assert await cache.key(ISSUER, "k2", "RS256") is None
        assert await cache.key(ISSUER, "k1", "RS256") is not None, "known keys still answer"
        source.gate.set()
        await _settle()
        assert await cache.key(ISSUER, "k2", "RS256") is not None
        assert source.fetches == 2, "the fetch given up on went on and brought the rotated key"

    _run(gives_up, unknown_kid_wait=0.05)

    async def first_use(cache: JWKSCache, source: _ScriptedSource, clock: FakeClock) -> None:
        source.gate.clear()
        with pytest.raises(ServiceUnavailableError) as hanging:
            await cache.key(ISSUER, "k1", "RS256")
        assert hanging.value.message == (
            "The identity provider's signing keys cannot be fetched (issuer "
            "https://idp.example/realms/maas): it sent none within 0.05s. Try again shortly."
        )
        source.gate.set()
        await _settle()
        assert await cache.key(ISSUER, "k1", "RS256") is not None
        assert source.fetches == 1

    _run(first_use, unknown_kid_wait=0.05)


def test_a_waiter_giving_up_does_not_cancel_the_shared_fetch() -> None:
    """A request cancelled (its client left) while waiting for keys leaves the fetch running for others."""

    async def check(cache: JWKSCache, source: _ScriptedSource, clock: FakeClock) -> None:
        source.gate.clear()
        waiter = asyncio.ensure_future(cache.key(ISSUER, "k1", "RS256"))
        await _settle()
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        source.gate.set()
        assert await cache.key(ISSUER, "k1", "RS256") is not None
        assert source.fetches == 1

    _run(check)


def test_failures_keep_keys_back_off_and_are_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """Failed refreshes keep the cached keys, are retried with backoff (never sooner than
    `min_refresh_interval`), and produce one warning for the outage and one for the recovery."""
    caplog.set_level(logging.INFO, "maas_gateway.auth")

    async def check(cache: JWKSCache, source: _ScriptedSource, clock: FakeClock) -> None:
        assert await cache.key(ISSUER, "k1", "RS256") is not None
        source.down = True
        clock.now += 61
        for step in (0, 4.9, 0.1, 9.9, 0.1, 19.9, 0.1):  # fetches at +0, +5 and +15 after each failure
            clock.now += step
            assert await cache.key(ISSUER, "k1", "RS256") is not None
            await _settle()
        assert source.fetches == 1 + 4
        source.down = False
        clock.now += 40
        assert await cache.key(ISSUER, "k1", "RS256") is not None
        await _settle()
        assert source.fetches == 6
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 2, warnings
        assert warnings[0] == (
            "Fetching the signing keys of https://idp.example/realms/maas failed: the signing keys at "
            "https://idp.example/realms/maas/jwks answered HTTP 502. Its 1 cached key(s) stay in use until "
            "they are 1d old; fetches are retried with backoff, at least 5s apart."
        )
        assert warnings[1] == (
            "The signing keys of https://idp.example/realms/maas can be fetched again after 4 failed "
            "attempt(s); 1 key(s) in use."
        )

    _run(check)


def test_keys_older_than_max_stale_age_are_not_trusted(caplog: pytest.LogCaptureFixture) -> None:
    """While fetches fail, cached keys serve up to `jwks_max_stale_age`; after that tokens get 503 (logged
    once as an error), retries come every `min_refresh_interval`, and the first success restores them."""

    async def check(cache: JWKSCache, source: _ScriptedSource, clock: FakeClock) -> None:
        assert await cache.key(ISSUER, "k1", "RS256") is not None
        source.down = True
        clock.now += 300
        for _ in range(3):
            with pytest.raises(ServiceUnavailableError) as refused:
                await cache.key(ISSUER, "k1", "RS256")
            assert "answered HTTP 502" in refused.value.message
            clock.now += 5
        assert source.fetches == 1 + 3
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert errors == [
            "The signing keys of https://idp.example/realms/maas are older than 5m and no longer trusted; "
            "its tokens are refused (503) until a fetch succeeds."
        ]
        source.down = False
        assert await cache.key(ISSUER, "k1", "RS256") is not None

    _run(check, max_stale_age=300)


def test_an_issuer_down_at_start_recovers_within_one_interval() -> None:
    """An issuer unreachable at first use is a 503 naming it, however long it stays down, and the first
    token after `min_refresh_interval` once it is up succeeds: no backoff without keys to serve."""

    async def check(cache: JWKSCache, source: _ScriptedSource, clock: FakeClock) -> None:
        source.down = True
        for _ in range(20):
            with pytest.raises(ServiceUnavailableError) as down:
                await cache.key(ISSUER, "k1", "RS256")
            assert "(issuer https://idp.example/realms/maas)" in down.value.message
            clock.now += 1
        assert source.fetches == 4  # at +0, +5, +10, +15
        source.down = False
        clock.now += 5
        assert await cache.key(ISSUER, "k1", "RS256") is not None

    _run(check)


def test_settings_defaults_and_stale_age_bound() -> None:
    """`unknown_kid_wait` defaults to 2 s and `jwks_max_stale_age` to 1 day, which cannot be shorter than
    `jwks_cache_ttl` (keys would be distrusted before they were ever refreshed)."""
    settings = OIDCSettings()
    assert (settings.unknown_kid_wait, settings.jwks_max_stale_age) == (2.0, 86400.0)
    with pytest.raises(ValidationError, match="jwks_max_stale_age cannot be shorter than jwks_cache_ttl"):
        OIDCSettings(jwks_cache_ttl="10m", jwks_max_stale_age="5m")
