"""A failing identity provider, with real processes: a gateway and an OIDC issuer whose key endpoint hangs
or that is not running yet. Cached keys keep tokens working without waiting; only unknown key ids wait,
for at most `unknown_kid_wait`; an issuer down at start is a 503 naming it and recovers by itself.

The refresh policy in detail (backoff, intervals, stale ages) is checked with a clock in
tests/test_jwks_cache.py; these tests keep one run of each failure through real processes, in real time,
as short as the configured intervals allow."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory
from tests.support.oidc_provider import CLIENT_ID, TokenIssuer, start_token_issuer
from tests.support.polling import wait_until
from tests.support.processes import ServerProcess, free_port


def _config(backend: str, issuer_url: str, **oidc: Any) -> dict[str, Any]:
    config = demo_dict(backend)
    issuer = {"issuer": issuer_url, "audience": CLIENT_ID, "default_tier": "free"}
    config["oidc"] = {"issuers": [issuer], **oidc}
    return config


def _claims(issuer_url: str) -> dict[str, Any]:
    return {"iss": issuer_url, "aud": CLIENT_ID, "sub": uuid.uuid4().hex}


def _models(gateway: ServerProcess, token: str) -> httpx.Response:
    """The answer to an authenticated /v1/models (no backend involved)."""
    return httpx.get(gateway.url + "/v1/models", headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _code(response: httpx.Response) -> str | None:
    return response.json()["error"]["code"] if response.status_code != 200 else None


def test_a_hanging_key_endpoint_stalls_only_unknown_key_ids(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """While the issuer's JWKS endpoint hangs and the cached keys are stale, tokens with a known key id
    answer 200 without waiting for the fetch (all of them before it fails at `http_timeout`, 3 s) and only
    one fetch is under way; a token with a rotated-in key id gets 401 `unknown_key` once
    `unknown_kid_wait` is over, not a wait for the fetch. Once the hang ends, the rotated key is picked
    up. The failure and the recovery are each logged once. Nothing is timed: events are put in order
    against the failure's log line; the waits are the configured intervals, to the end the test knows."""
    issuer: TokenIssuer = start_token_issuer(tmp_path)
    try:
        config = _config(
            simulator.url,
            issuer.url,
            jwks_cache_ttl="0.5s",
            jwks_min_refresh_interval="0.5s",
            http_timeout="3s",
            unknown_kid_wait="0.5s",
        )
        gateway = gateway_factory(config)
        old = issuer.mint(_claims(issuer.url))
        assert _models(gateway, old).status_code == 200
        fetched_before = time.monotonic()  # the gateway's clock too: both read CLOCK_MONOTONIC
        assert issuer.jwks_fetches() == 1
        time.sleep(max(0.0, fetched_before + 0.5 - time.monotonic()))  # the cached keys are stale now
        issuer.hang(600)  # until released below
        failed = f"Fetching the signing keys of {issuer.url} failed: the signing keys at {issuer.url}/jwks"
        statuses = [_models(gateway, old).status_code for _ in range(20)]
        assert statuses == [200] * 20
        issuer.rotate(keep_old=True)
        new = issuer.mint(_claims(issuer.url))
        response = _models(gateway, new)
        assert _code(response) == "unknown_key", response.text
        assert failed not in gateway.log(), "the answers above waited for the fetch to fail"
        assert issuer.jwks_fetches() == 2, "one fetch at a time, however many tokens arrive"
        wait_until(lambda: failed in gateway.log(), "the failed fetch's log line")
        log = gateway.log()
        assert f"{failed} did not arrive within 3s. Its 1 cached key(s) stay in use" in log
        issuer.hang(0)
        deadline = time.monotonic() + 10  # a retry 0.5 s after the failure, plus the fetch
        while (response := _models(gateway, new)).status_code != 200:
            assert _code(response) in ("unknown_key", "identity_provider_unavailable"), response.text
            assert time.monotonic() < deadline, "the rotated key was not picked up after the hang"
            time.sleep(0.1)
        assert _models(gateway, old).status_code == 200
        log = gateway.log()
        assert log.count(failed) == 1, log
        assert log.count(f"The signing keys of {issuer.url} can be fetched again after") == 1, log
    finally:
        issuer.server.stop()


def test_an_issuer_down_at_start_is_503_then_recovers_by_itself(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """A gateway started before its issuer answers tokens with 503 `identity_provider_unavailable` naming
    the issuer, across several failed fetches; once the issuer starts, tokens work without a restart.
    That the retry stays one `jwks_min_refresh_interval` however long the issuer was down (no backoff
    without keys) is checked with a clock in test_jwks_cache.py; the 10 s deadline here is 20 intervals."""
    port = free_port()
    issuer_url = f"http://127.0.0.1:{port}"
    gateway = gateway_factory(_config(simulator.url, issuer_url, jwks_min_refresh_interval="0.5s"))
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(_claims(issuer_url), stranger, algorithm="RS256", headers={"kid": "k"})
    for _ in range(6):  # over a second: fetches fail at the start and after each interval
        response = _models(gateway, forged)
        assert _code(response) == "identity_provider_unavailable", response.text
        message = response.json()["error"]["message"]
        assert f"(issuer {issuer_url})" in message
        assert message.endswith("Try again shortly.")
        time.sleep(0.2)
    issuer = start_token_issuer(tmp_path, port)
    try:
        token = issuer.mint(_claims(issuer_url))
        deadline = time.monotonic() + 10
        while (response := _models(gateway, token)).status_code != 200:
            assert _code(response) == "identity_provider_unavailable", response.text
            assert time.monotonic() < deadline, "not recovered after the issuer started"
            time.sleep(0.05)
        log = gateway.log()
        assert log.count(f"Fetching the signing keys of {issuer_url} failed:") == 1, log
        assert "Its tokens are refused (503) until a fetch succeeds; fetches are retried every 0.5s." in log
        assert log.count(f"The signing keys of {issuer_url} can be fetched again after") == 1, log
    finally:
        issuer.server.stop()
