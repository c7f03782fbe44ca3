"""A failing identity provider, with real processes: a gateway and an OIDC issuer whose key endpoint hangs
or that is not running yet. Cached keys keep tokens working without waiting; only unknown key ids wait,
for at most `unknown_kid_wait`; an issuer down at start is a 503 naming it and recovers by itself."""

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
from tests.support.processes import ServerProcess, free_port


def _config(backend: str, issuer_url: str, **oidc: Any) -> dict[str, Any]:
    config = demo_dict(backend)
    issuer = {"issuer": issuer_url, "audience": CLIENT_ID, "default_tier": "free"}
    config["oidc"] = {"issuers": [issuer], **oidc}
    return config


def _claims(issuer_url: str) -> dict[str, Any]:
    return {"iss": issuer_url, "aud": CLIENT_ID, "sub": uuid.uuid4().hex}


def _timed(gateway: ServerProcess, token: str) -> tuple[httpx.Response, float]:
    """The answer to an authenticated /v1/models (no backend involved) and how long it took."""
    started = time.monotonic()
    response = httpx.get(gateway.url + "/v1/models", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    return response, time.monotonic() - started


def _code(response: httpx.Response) -> str | None:
    return response.json()["error"]["code"] if response.status_code != 200 else None


def test_a_hanging_key_endpoint_stalls_only_unknown_key_ids(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """While the issuer's JWKS endpoint hangs and the cached keys are stale, tokens with a known key id
    answer 200 at once (each under 1 s) and only one fetch is under way; a token with a rotated-in key id
    gets 401 `unknown_key` within `unknown_kid_wait` (1 s) plus a margin. Once the hang ends, the rotated
    key is picked up. The failure and the recovery are each logged once."""
    issuer: TokenIssuer = start_token_issuer(tmp_path)
    try:
        config = _config(
            simulator.url,
            issuer.url,
            jwks_cache_ttl="1s",
            jwks_min_refresh_interval="1s",
            http_timeout="2s",
            unknown_kid_wait="1s",
        )
        gateway = gateway_factory(config)
        old = issuer.mint(_claims(issuer.url))
        assert _timed(gateway, old)[0].status_code == 200
        assert issuer.jwks_fetches() == 1
        time.sleep(1.2)  # the cached keys are stale now
        issuer.hang(5)
        hang_ends = time.monotonic() + 5
        response, took = _timed(gateway, old)
        assert (response.status_code, took < 1) == (200, True), (response.text, took)
        issuer.rotate(keep_old=True)
        new = issuer.mint(_claims(issuer.url))
        response, took = _timed(gateway, new)
        assert _code(response) == "unknown_key", response.text
        assert 0.9 < took < 1.9, took
        latencies = []
        while time.monotonic() < hang_ends - 2.5:
            response, took = _timed(gateway, old)
            assert response.status_code == 200, response.text
            latencies.append(took)
        assert len(latencies) > 10
        assert max(latencies) < 1, latencies
        assert issuer.jwks_fetches() == 2, "one fetch at a time, however many tokens arrive"
        time.sleep(max(0.0, hang_ends - time.monotonic()))
        deadline = time.monotonic() + 6  # a retry within the backoff (at most 2 s here) plus the fetch
        while (response := _timed(gateway, new)[0]).status_code != 200:
            assert _code(response) in ("unknown_key", "identity_provider_unavailable"), response.text
            assert time.monotonic() < deadline, "the rotated key was not picked up after the hang"
            time.sleep(0.2)
        assert _timed(gateway, old)[0].status_code == 200
        log = gateway.log()
        failed = f"Fetching the signing keys of {issuer.url} failed: the signing keys at {issuer.url}/jwks"
        assert log.count(failed) == 1, log
        assert f"{failed} did not arrive within 2s. Its 1 cached key(s) stay in use" in log
        assert log.count(f"The signing keys of {issuer.url} can be fetched again after") == 1, log
    finally:
        issuer.server.stop()


def test_an_issuer_down_at_start_is_503_then_recovers_within_one_interval(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """A gateway started before its issuer answers tokens with 503 `identity_provider_unavailable`
    naming the issuer, promptly, however long the issuer stays down; once the issuer starts, tokens work
    within one `jwks_min_refresh_interval` (2 s) plus a margin."""
    port = free_port()
    issuer_url = f"http://127.0.0.1:{port}"
    gateway = gateway_factory(_config(simulator.url, issuer_url, jwks_min_refresh_interval="2s"))
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(_claims(issuer_url), stranger, algorithm="RS256", headers={"kid": "k"})
    down_until = time.monotonic() + 4.5  # long enough for several failed fetches
    while time.monotonic() < down_until:
        response, took = _timed(gateway, forged)
        assert _code(response) == "identity_provider_unavailable", response.text
        message = response.json()["error"]["message"]
        assert f"(issuer {issuer_url})" in message
        assert message.endswith("Try again shortly.")
        assert took < 1, took
        time.sleep(0.2)
    issuer = start_token_issuer(tmp_path, port)
    try:
        token = issuer.mint(_claims(issuer_url))
        up = time.monotonic()
        while (response := _timed(gateway, token)[0]).status_code != 200:
            assert _code(response) == "identity_provider_unavailable", response.text
            assert time.monotonic() - up < 2 + 1.5, "not recovered within one refresh interval"
            time.sleep(0.1)
        log = gateway.log()
        assert log.count(f"Fetching the signing keys of {issuer_url} failed:") == 1, log
        assert "Its tokens are refused (503) until a fetch succeeds; fetches are retried every 2s." in log
        assert log.count(f"The signing keys of {issuer_url} can be fetched again after") == 1, log
    finally:
        issuer.server.stop()
