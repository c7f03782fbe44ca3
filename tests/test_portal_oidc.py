"""Signing in to the portal through a real OIDC provider process (tests/support/oidc_issuer.py: the
authorization-code flow with PKCE, a login form), over HTTP: what a person gets, and what an attacker
or a broken provider gets instead (an error page, never a session)."""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.support.gateways import GatewayFactory
from tests.support.oidc_provider import TokenIssuer, start_token_issuer
from tests.support.portal import ADMIN_KEY
from tests.support.portal_oidc import (
    API_AUDIENCE,
    ENV,
    LABEL,
    authorize,
    begin,
    idp_client,
    oidc_portal_config,
    register,
    start_oidc_portal,
)
from tests.support.postgres_server import throwaway_database
from tests.support.processes import GatewayProcess, ServerProcess

LOGIN_COOKIE = "maas_portal_login"
SESSION_COOKIE = "maas_portal_session"


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenIssuer]:
    provider = start_token_issuer(tmp_path_factory.mktemp("idp"))
    yield provider
    provider.server.stop()


@pytest.fixture(scope="module")
def portal(
    simulator: ServerProcess, issuer: TokenIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    directory = tmp_path_factory.mktemp("portal-oidc")
    server = start_oidc_portal(simulator.url, directory, issuer, sign_in_throttle={"burst": 3, "per": "5m"})
    yield server
    server.stop()


def _signed_in_as(client: httpx.Client) -> str:
    overview = client.get("/portal/")
    assert overview.status_code == 200, overview.text
    return overview.text


def _refused(answer: httpx.Response, client: httpx.Client, status: int = 400) -> None:
    """An error page, no session, the login state gone, and the overview still asks for a sign-in."""
    assert answer.status_code == status, answer.text
    assert "Sign-in failed" in answer.text or "Too many" in answer.text
    assert SESSION_COOKIE not in answer.cookies
    assert LOGIN_COOKIE not in client.cookies
    assert client.get("/portal/").status_code == 303


def test_the_sign_in_page_offers_the_provider(portal: GatewayProcess, issuer: TokenIssuer) -> None:
    """The sign-in page links "Sign in with <name>" to the start of a sign-in at the configured issuer,
    carrying `next`, with the name and URL escaped."""
    with idp_client(portal) as client:
        page = client.get("/portal/sign-in", params={"next": "/portal/admin/"}).text
    link = re.search(r'<a class="provider" href="([^"]+)">Sign in with ([^<]+)</a>', page)
    assert link is not None
    assert link.group(2) == LABEL
    query = parse_qs(urlsplit(html.unescape(link.group(1))).query)
    assert query == {"issuer": [issuer.url], "next": ["/portal/admin/"]}


def test_a_provider_user_lands_on_the_overview_with_the_tier_of_their_groups(
    portal: GatewayProcess, issuer: TokenIssuer
) -> None:
    """alice (group premium) signs in at the provider and lands on the overview as idp:alice, tier
    premium; her users row is the one her bearer tokens use on the API (source oidc, same name)."""
    with idp_client(portal) as client:
        location = begin(client, issuer)
        answer = client.get(authorize(location, "alice"))
        assert answer.status_code == 303
        assert answer.headers["location"] == "/portal/"
        assert LOGIN_COOKIE not in client.cookies
        page = _signed_in_as(client)
    assert '<span class="tier">premium</span>' in page
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    row = httpx.get(f"{portal.url}/admin/users/idp:alice", headers=admin).json()
    assert (row["source"], row["tier"]) == ("oidc", "premium")
    token = issuer.mint({"sub": "alice", "aud": API_AUDIENCE, "groups": ["premium"]})
    models = httpx.get(f"{portal.url}/v1/models", headers={"Authorization": f"Bearer {token}"})
    assert models.status_code == 200
    users = httpx.get(f"{portal.url}/admin/users", headers=admin, params={"limit": 500}).text
    assert users.count('"idp:alice"') == 1


def test_the_request_carries_state_nonce_and_an_s256_challenge_that_the_provider_checks(
    portal: GatewayProcess, issuer: TokenIssuer
) -> None:
    """The authorization request has the client, the callback, a state, a nonce and an S256 challenge
    (never the verifier); the provider verifies the PKCE verifier sent with the code."""
    before = issuer.stats()["pkce_verified"]
    with idp_client(portal) as client:
        location = begin(client, issuer)
        query = {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}
        assert query["client_id"] == "maas-gateway"
        assert query["redirect_uri"] == f"{portal.url}/portal/auth/callback"
        assert query["code_challenge_method"] == "S256"
        assert len(query["state"]) >= 43
        assert len(query["nonce"]) >= 43
        assert query["code_challenge"] not in client.cookies[LOGIN_COOKIE]
        assert client.get(authorize(location, "alice")).status_code == 303
    assert issuer.stats()["pkce_verified"] == before + 1


def test_a_verifier_that_does_not_match_the_challenge_is_refused_by_the_provider(
    portal: GatewayProcess, issuer: TokenIssuer
) -> None:
    """With the browser's login state edited to hold another PKCE verifier, the provider refuses the
    code: an error page and no session (the unsigned cookie only lets its holder fail)."""
    with idp_client(portal) as client:
        location = begin(client, issuer)
        state = json.loads(base64.urlsafe_b64decode(client.cookies[LOGIN_COOKIE]))
        state["verifier"] = "x" * 43
        edited = base64.urlsafe_b64encode(json.dumps(state).encode()).decode()
        client.cookies.set(LOGIN_COOKIE, edited, domain="127.0.0.1", path="/portal")
        refusals = issuer.stats()["code_refusals"]
        _refused(client.get(authorize(location, "alice")), client)
    assert issuer.stats()["code_refusals"] == refusals + 1


def test_an_admin_group_member_reaches_the_admin_pages_and_others_do_not(
    portal: GatewayProcess, issuer: TokenIssuer
) -> None:
    """boss (group idp-admins) gets the admin portal; alice (premium only) gets the 403 page there."""
    with idp_client(portal) as client:
        client.get(authorize(begin(client, issuer), "boss"))
        assert client.get("/portal/admin/").status_code == 200
    with idp_client(portal) as client:
        client.get(authorize(begin(client, issuer), "alice"))
        assert client.get("/portal/admin/").status_code == 403


def test_a_user_in_no_mapped_group_signs_in_and_is_told_they_have_no_tier(
    portal: GatewayProcess, issuer: TokenIssuer
) -> None:
    """nobody (no group) may sign in; the overview says they have no tier, so API calls are refused."""
    with idp_client(portal) as client:
        client.get(authorize(begin(client, issuer), "nobody"))
        page = _signed_in_as(client)
    assert "Your tier: none" in page


def test_a_tampered_or_missing_state_is_an_error_page(portal: GatewayProcess, issuer: TokenIssuer) -> None:
    """A callback whose state differs from the browser's, or a callback in a browser that never started
    a sign-in (login CSRF), is an error page without a session."""
    with idp_client(portal) as client:
        callback = authorize(begin(client, issuer), "alice")
        parts = urlsplit(callback)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        query["state"] = query["state"][:-2] + "xx"
        _refused(client.get(f"{parts.path}?{urlencode(query)}"), client)
    with idp_client(portal) as victim:
        with idp_client(portal) as attacker:
            callback = authorize(begin(attacker, issuer), "alice")
        _refused(victim.get(callback), victim)


def test_a_replayed_callback_or_code_is_an_error_page(portal: GatewayProcess, issuer: TokenIssuer) -> None:
    """The same callback a second time finds no login state; the code under a fresh attempt's state is
    refused by the provider (a code is used once): both an error page, no session."""
    with idp_client(portal) as client:
        callback = authorize(begin(client, issuer), "alice")
        assert client.get(callback).status_code == 303
        client.cookies.clear()
        _refused(client.get(callback), client)
        used_code = parse_qs(urlsplit(callback).query)["code"][0]
        fresh = authorize(begin(client, issuer), "alice")
        fresh_state = parse_qs(urlsplit(fresh).query)["state"][0]
        _refused(
            client.get("/portal/auth/callback", params={"code": used_code, "state": fresh_state}), client
        )


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "someone-else"}, "another audience"),
        ({"nonce": "not-the-nonce-of-this-sign-in-0123456789abcdef"}, "nonce differs"),
        ({"nonce": None}, "nonce differs"),
        ({"exp": 1_000_000_000, "iat": 999_999_000}, "expired"),
        ({"iss": "http://127.0.0.1:1/other"}, "was not issued by"),
    ],
)
def test_an_id_token_with_the_wrong_audience_nonce_expiry_or_issuer_is_refused(
    portal: GatewayProcess, issuer: TokenIssuer, claims: dict[str, object], reason: str
) -> None:
    """The provider's ID token is checked like an API token, with the portal's client as audience and
    this attempt's nonce: a wrong audience, nonce or issuer, or an expired token, is an error page."""
    with idp_client(portal) as client:
        location = begin(client, issuer)
        issuer.override_next_id_token(**claims)
        answer = client.get(authorize(location, "alice"))
        _refused(answer, client)
    assert reason in answer.text


def test_a_provider_error_is_an_error_page(portal: GatewayProcess, issuer: TokenIssuer) -> None:
    """The provider answering `error=access_denied` (the person pressed Cancel) is an error page that
    names it, as text."""
    with idp_client(portal) as client:
        begin(client, issuer)
        state = json.loads(base64.urlsafe_b64decode(client.cookies[LOGIN_COOKIE]))["state"]
        params = {"error": "<b>access_denied</b>", "state": state}
        answer = client.get("/portal/auth/callback", params=params)
        _refused(answer, client)
    assert "&lt;b&gt;access_denied&lt;/b&gt;" in answer.text


def test_failed_callbacks_are_throttled_per_address(portal: GatewayProcess, issuer: TokenIssuer) -> None:
    """After `burst` (3) failed callbacks from one address, the next is a 429 page with Retry-After,
    even a correct one; another address still signs in."""
    with idp_client(portal) as client:
        for _ in range(3):
            _refused(client.get("/portal/auth/callback", params={"code": "x", "state": "y"}), client)
        answer = client.get(authorize(begin(client, issuer), "alice"))
        _refused(answer, client, status=429)
        assert int(answer.headers["retry-after"]) > 0
    with idp_client(portal) as other:
        assert other.get(authorize(begin(other, issuer), "alice")).status_code == 303


def test_next_is_kept_and_only_within_the_portal(portal: GatewayProcess, issuer: TokenIssuer) -> None:
    """`next` survives the trip to the provider when it is a portal path; another site becomes the
    overview (no open redirect)."""
    with idp_client(portal) as client:
        answer = client.get(authorize(begin(client, issuer, "/portal/admin/"), "alice"))
        assert answer.headers["location"] == "/portal/admin/"
    with idp_client(portal) as client:
        answer = client.get(authorize(begin(client, issuer, "https://evil.example/"), "alice"))
        assert answer.headers["location"] == "/portal/"


def test_starting_with_an_issuer_not_offered_is_a_400_page(portal: GatewayProcess) -> None:
    """A start naming an issuer the portal does not offer (or none) is a 400 page that goes nowhere and
    sets no login state."""
    with idp_client(portal) as client:
        for params in ({"issuer": "https://evil.example"}, {}):
            answer = client.get("/portal/auth/start", params=params)
            assert answer.status_code == 400
            assert "location" not in answer.headers
            assert LOGIN_COOKIE not in answer.cookies


def test_a_disabled_provider_user_gets_a_403_page_and_no_session(
    portal: GatewayProcess, issuer: TokenIssuer
) -> None:
    """Once an administrator disables the provider's user (through the admin API), signing in at the
    provider again is a 403 page and starts no session, and their open session stopped working."""
    with idp_client(portal) as client:
        assert client.get(authorize(begin(client, issuer), "nobody")).status_code == 303
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        answer = httpx.patch(f"{portal.url}/admin/users/idp:nobody", json={"disabled": True}, headers=admin)
        assert answer.status_code == 200, answer.text
        try:
            assert client.get("/portal/").status_code == 303
            refused = client.get(authorize(begin(client, issuer), "nobody"))
            assert refused.status_code == 403
            assert SESSION_COOKIE not in refused.cookies
        finally:
            httpx.patch(f"{portal.url}/admin/users/idp:nobody", json={"disabled": False}, headers=admin)


def test_a_sign_in_started_on_one_replica_finishes_on_another(
    simulator: ServerProcess, issuer: TokenIssuer, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """Two replicas share a PostgreSQL database: a sign-in started on one and called back on the other
    (a load balancer's choice) succeeds, since the attempt lives in the browser, and the session works on
    both."""
    with throwaway_database("postgresql", tmp_path) as url:
        config = oidc_portal_config(simulator.url, tmp_path, issuer)
        config["database"]["url"] = url
        first, second = gateway_factory(config, env=ENV), gateway_factory(config, env=ENV)
        try:
            register(issuer, first, second)
            with idp_client(first) as client:
                callback = urlsplit(authorize(begin(client, issuer), "alice"))
                elsewhere = f"{second.url}{callback.path}?{callback.query}"
                answer = client.get(elsewhere)
                assert answer.status_code == 303, answer.text
                assert '<span class="tier">premium</span>' in client.get(f"{second.url}/portal/").text
                assert client.get(f"{first.url}/portal/").status_code == 200
        finally:
            first.stop()
            second.stop()
