"""Trust in keys and users, over real HTTP: what an attacker with one credential tries, and what must hold.

A key never mints a stronger key; the users table rules every identity (configuration-file keys and
tokens included); identity sources never share a namespace; keys follow their owner's current tier;
rejected requests write nothing; concurrent first calls never fail.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.gateways import GatewayFactory
from tests.support.identity import admin_call, assert_error, bearer, create_key, identity_config
from tests.support.limits import chat
from tests.support.oidc_provider import CLIENT_ID, TokenIssuer, start_token_issuer
from tests.support.processes import ServerProcess

GROUP_TIERS = {"enterprise-users": "enterprise", "premium-users": "premium", "free-users": "free"}


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenIssuer]:
    started = start_token_issuer(tmp_path_factory.mktemp("issuer"))
    yield started
    started.server.stop()


@pytest.fixture
def gateway(
    simulator: ServerProcess, issuer: TokenIssuer, gateway_factory: GatewayFactory, tmp_path: Path
) -> ServerProcess:
    """One gateway on SQLite trusting the token issuer (namespace `idp`), keys cached for 0.5 s."""
    config = identity_config(
        simulator.url, f"sqlite+aiosqlite:///{tmp_path / 'maas.db'}", tmp_path / "spool", cache_ttl="0.5s"
    )
    config["oidc"] = {
        "issuers": [
            {"issuer": issuer.url, "audience": CLIENT_ID, "group_tiers": GROUP_TIERS, "namespace": "idp"}
        ]
    }
    return gateway_factory(config)


def _token(issuer: TokenIssuer, sub: str, *groups: str, lifetime: int = 600) -> str:
    claims = {"iss": issuer.url, "aud": CLIENT_ID, "sub": sub, "groups": list(groups)}
    return issuer.mint({**claims, "exp": int(time.time()) + lifetime})


def _own(gateway: ServerProcess, credential: str, method: str, path: str = "", **kw: Any) -> httpx.Response:
    return httpx.request(
        method, gateway.url + "/v1/keys" + path, headers=bearer(credential), timeout=30, **kw
    )


def test_an_ephemeral_restricted_key_cannot_mint_a_stronger_key(gateway: ServerProcess) -> None:
    """A 10-minute ephemeral key limited to one model may create no key at all (403 saying why)."""
    ephemeral = create_key(
        gateway, "mallory", "premium", ephemeral=True, expiresIn="10m", models=["simulator-model"]
    )
    message = assert_error(
        _own(gateway, ephemeral["key"], "POST", json={"name": "x"}), 403, "ephemeral_key_cannot_create"
    )
    assert "ephemeral" in message
    unrestricted = create_key(gateway, "mallory", "premium")
    rotated = _own(gateway, ephemeral["key"], "POST", f"/{unrestricted['id']}/rotate", json={})
    assert_error(rotated, 403, "ephemeral_key_cannot_create")
    listed = admin_call(gateway, "GET", "/admin/keys", params={"user": "mallory"}).json()
    assert listed["total"] == 2, "nothing was created"


def test_a_restricted_key_creates_keys_no_stronger_than_itself(gateway: ServerProcess) -> None:
    """A key limited to one model and one day creates keys with at most that model and that day; asking
    for more is a 403 naming the rule; it cannot rotate a stronger key of the same user either."""
    creator = create_key(gateway, "mallory", "premium", expiresIn="1d", models=["simulator-model"])
    child = _own(gateway, creator["key"], "POST", json={"name": "child"})
    assert child.status_code == 201, child.text
    assert child.json()["models"] == ["simulator-model"]
    assert child.json()["expires_at"] <= creator["expires_at"] + 0.001
    wider = _own(gateway, creator["key"], "POST", json={"name": "x", "models": ["simulator-embed"]})
    assert "allow-list" in assert_error(wider, 403, "model_not_allowed")
    longer = _own(gateway, creator["key"], "POST", json={"name": "x", "expiresIn": "30d"})
    assert "outlive" in assert_error(longer, 403, "key_outlives_creator")
    stronger = create_key(gateway, "mallory", "premium")
    rotate = _own(gateway, creator["key"], "POST", f"/{stronger['id']}/rotate", json={})
    assert_error(rotate, 403, "key_stronger_than_creator")
    assert chat(gateway.url, child.json()["key"], model="simulator-embed").status_code == 403


def test_a_token_creates_keys_within_the_tier_rules(gateway: ServerProcess, issuer: TokenIssuer) -> None:
    """A token's 10-minute life does not cap the keys it creates (the tier's rules do); models the tier
    may not use are refused."""
    token = _token(issuer, "tara", "premium-users")
    created = _own(gateway, token, "POST", json={"name": "laptop", "expiresIn": "30d"})
    assert created.status_code == 201, created.text
    assert created.json()["user"] == "idp:tara"
    assert created.json()["expires_at"] > time.time() + 29 * 86400
    too_long = _own(gateway, token, "POST", json={"name": "x", "expiresIn": "365d"})
    assert_error(too_long, 400, "lifetime_too_long")


def test_disabling_and_moving_apply_to_configuration_keys_and_tokens(
    gateway: ServerProcess, issuer: TokenIssuer
) -> None:
    """The users table rules every identity: a configuration-file user and a token user can be moved to
    another tier and disabled, and enabled again."""
    assert chat(gateway.url, "freeuser2_key", max_tokens=1).headers["x-ratelimit-limit-requests"] == "5"
    moved = admin_call(gateway, "PATCH", "/admin/users/freeuser2", json={"tier": "enterprise"})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["tier"], moved.json()["source"]) == ("enterprise", "config")
    assert chat(gateway.url, "freeuser2_key", max_tokens=1).headers["x-ratelimit-limit-requests"] == "100"
    admin_call(gateway, "PATCH", "/admin/users/freeuser2", json={"disabled": True})
    assert_error(chat(gateway.url, "freeuser2_key", max_tokens=1), 401, "user_disabled")
    admin_call(gateway, "PATCH", "/admin/users/freeuser2", json={"disabled": False, "tier": None})
    assert chat(gateway.url, "freeuser2_key", max_tokens=1).headers["x-ratelimit-limit-requests"] == "5"

    token = _token(issuer, "dave", "free-users")
    assert chat(gateway.url, token, max_tokens=1).status_code == 200
    unknown = admin_call(gateway, "PATCH", "/admin/users/idp:nobody", json={"disabled": True})
    assert "first token" in assert_error(unknown, 404, "user_not_found")
    deadline = time.monotonic() + 5
    while admin_call(gateway, "GET", "/admin/users/idp:dave").status_code != 200:
        assert time.monotonic() < deadline, "a token's user gets a row"
        time.sleep(0.05)
    admin_call(gateway, "PATCH", "/admin/users/idp:dave", json={"tier": "enterprise"})
    assert chat(gateway.url, token, max_tokens=1).headers["x-ratelimit-limit-requests"] == "100"
    admin_call(gateway, "PATCH", "/admin/users/idp:dave", json={"disabled": True})
    assert_error(chat(gateway.url, token, max_tokens=1), 401, "user_disabled")


def test_a_rejected_admin_key_creation_writes_nothing(gateway: ServerProcess) -> None:
    """Bad input creates neither key nor user; a tier that disagrees with an existing user's is 409."""
    bad = admin_call(
        gateway,
        "POST",
        "/admin/keys",
        json={"user": "newbie", "tier": "free", "name": "k", "models": ["nope"]},
    )
    assert bad.status_code == 400
    too_long = admin_call(
        gateway,
        "POST",
        "/admin/keys",
        json={"user": "newbie", "tier": "free", "name": "k", "expiresIn": "999d"},
    )
    assert too_long.status_code == 400
    assert admin_call(gateway, "GET", "/admin/users/newbie").status_code == 404
    create_key(gateway, "newbie", "free")
    conflict = admin_call(
        gateway, "POST", "/admin/keys", json={"user": "newbie", "tier": "premium", "name": "k"}
    )
    assert "'free', not 'premium'" in assert_error(conflict, 409, "conflict")
    reserved = admin_call(
        gateway, "POST", "/admin/keys", json={"user": "other:eve", "tier": "free", "name": "k"}
    )
    assert reserved.status_code == 400


def test_concurrent_first_self_service_calls_all_succeed(gateway: ServerProcess, issuer: TokenIssuer) -> None:
    """Ten simultaneous first key creations of a new token user: ten keys, no 500."""
    token = _token(issuer, f"new-{uuid.uuid4().hex[:6]}", "free-users")

    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=gateway.url, headers=bearer(token), timeout=30) as client:
            answers = await asyncio.gather(
                *(client.post("/v1/keys", json={"name": f"k{i}"}) for i in range(10))
            )
        return [answer.status_code for answer in answers]

    assert asyncio.run(burst()) == [201] * 10


def test_identity_sources_do_not_share_a_namespace(gateway: ServerProcess, issuer: TokenIssuer) -> None:
    """A token whose subject is `freeuser1` is not the configuration's `freeuser1`: it sees none of her
    keys, cannot revoke them and reads only its own usage."""
    own = _own(gateway, "freeuser1_key", "POST", json={"name": "hers"})
    assert own.status_code == 201
    impostor = _token(issuer, "freeuser1", "free-users")
    assert _own(gateway, impostor, "GET").json()["total"] == 0
    assert _own(gateway, impostor, "DELETE", f"/{own.json()['id']}").status_code == 404
    assert chat(gateway.url, own.json()["key"], max_tokens=1).status_code == 200
    usage = httpx.get(gateway.url + "/v1/usage", params={"group_by": "user"}, headers=bearer(impostor))
    assert {row["user"] for row in usage.json()["data"]} <= {"idp:freeuser1"}


def test_keys_follow_their_owners_current_groups(gateway: ServerProcess, issuer: TokenIssuer) -> None:
    """A key created by a premium token user becomes free when their groups say free, and stops working
    when no group maps to a tier any more; it works again once a group does."""
    sub = f"demoted-{uuid.uuid4().hex[:6]}"
    key = _own(gateway, _token(issuer, sub, "premium-users"), "POST", json={"name": "k"}).json()["key"]
    assert chat(gateway.url, key, max_tokens=1).headers["x-ratelimit-limit-requests"] == "20"

    def limit_after(token: str, expected: str) -> None:
        httpx.get(gateway.url + "/v1/models", headers=bearer(token))  # any authenticated call
        deadline = time.monotonic() + 5
        while True:
            answer = chat(gateway.url, key, max_tokens=1)
            seen = answer.headers.get("x-ratelimit-limit-requests") or answer.json()["error"]["code"]
            if seen == expected:
                return
            assert time.monotonic() < deadline, f"still {seen}, not {expected}"
            time.sleep(0.1)

    limit_after(_token(issuer, sub, "free-users"), "5")
    assert chat(gateway.url, _token(issuer, sub, "staff"), max_tokens=1).status_code == 403
    limit_after(_token(issuer, sub, "staff"), "user_deprovisioned")
    limit_after(_token(issuer, sub, "premium-users"), "20")


def test_an_admin_key_for_a_configured_user_follows_the_configuration(gateway: ServerProcess) -> None:
    """A key an administrator creates for a configuration-file user needs no tier, gets the file's tier,
    and a different `tier` is a 409 rather than a silent second truth."""
    conflict = admin_call(
        gateway, "POST", "/admin/keys", json={"user": "freeuser1", "tier": "premium", "name": "k"}
    )
    assert "'free', not 'premium'" in assert_error(conflict, 409, "conflict")
    created = admin_call(gateway, "POST", "/admin/keys", json={"user": "freeuser1", "name": "k"})
    assert created.status_code == 201, created.text
    assert chat(gateway.url, created.json()["key"], max_tokens=1).headers["x-ratelimit-limit-requests"] == "5"
    assert admin_call(gateway, "GET", "/admin/users/freeuser1").json()["source"] == "config"
