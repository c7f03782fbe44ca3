"""The audit log over real HTTP: every admin change is recorded once it is done, by whom and from where;
failed actions are not; secrets never appear; entries survive a restart; only administrators read it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.gateways import GatewayFactory
from tests.support.identity import ADMIN_HEADERS, admin_call, assert_error, bearer, identity_config
from tests.support.oidc_provider import CLIENT_ID, TokenIssuer, start_token_issuer
from tests.support.processes import ServerProcess


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenIssuer]:
    started = start_token_issuer(tmp_path_factory.mktemp("issuer"))
    yield started
    started.server.stop()


def _config(simulator: ServerProcess, tmp_path: Path, issuer: TokenIssuer | None = None) -> dict[str, Any]:
    config = identity_config(simulator.url, f"sqlite+aiosqlite:///{tmp_path / 'maas.db'}", tmp_path / "spool")
    if issuer is not None:
        config["oidc"] = {
            "issuers": [
                {
                    "issuer": issuer.url,
                    "audience": CLIENT_ID,
                    "group_tiers": {"free-users": "free"},
                    "admin_groups": ["maas-admins"],
                    "namespace": "idp",
                }
            ]
        }
    return config


def _audit(gateway: ServerProcess, **params: Any) -> dict[str, Any]:
    answer = admin_call(gateway, "GET", "/admin/audit", params=params)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_every_admin_change_is_recorded_without_secrets(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """Creating a user and a key, rotating and revoking it, and moving the user each leave one entry,
    newest first, naming the admin key and the client address; neither key's secret appears anywhere."""
    gateway = gateway_factory(_config(simulator, tmp_path))
    assert (
        admin_call(gateway, "POST", "/admin/users", json={"user": "carol", "tier": "free"}).status_code == 201
    )
    created = admin_call(gateway, "POST", "/admin/keys", json={"user": "carol", "name": "laptop"}).json()
    rotated = admin_call(
        gateway, "POST", f"/admin/keys/{created['id']}/rotate", json={"gracePeriod": "0s"}
    ).json()
    new_id = rotated["new"]["id"]
    assert admin_call(gateway, "DELETE", f"/admin/keys/{new_id}").status_code == 200
    assert admin_call(gateway, "PATCH", "/admin/users/carol", json={"tier": "premium"}).status_code == 200

    answer = admin_call(gateway, "GET", "/admin/audit")
    for secret in (created["key"], rotated["new"]["key"]):
        assert secret not in answer.text
    entries = answer.json()["data"]
    assert [(e["action"], e["subject"]) for e in entries] == [
        ("user.update", "carol"),
        ("key.revoke", new_id),
        ("key.rotate", created["id"]),
        ("key.create", created["id"]),
        ("user.create", "carol"),
    ]
    assert {(e["actor"], e["actor_kind"], e["address"]) for e in entries} == {
        ("admin key", "admin_key", "127.0.0.1")
    }
    assert entries[0]["details"] == {"tier": "premium", "previous_tier": "free"}
    assert entries[2]["details"]["new_key_id"] == new_id
    assert entries[3]["details"]["name"] == "laptop"


def test_failed_actions_are_not_recorded(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """A revocation of an unknown key (404), a move to an unknown tier (400), a duplicate user (409) and a
    body that is not JSON (400) leave the audit log empty."""
    gateway = gateway_factory(_config(simulator, tmp_path))
    assert_error(admin_call(gateway, "DELETE", "/admin/keys/key_nothere"), 404, "key_not_found")
    assert (
        admin_call(gateway, "POST", "/admin/users", json={"user": "dan", "tier": "free"}).status_code == 201
    )
    moved = admin_call(gateway, "PATCH", "/admin/users/dan", json={"tier": "platinum"})
    assert moved.status_code == 400, moved.text
    assert (
        admin_call(gateway, "POST", "/admin/users", json={"user": "dan", "tier": "free"}).status_code == 409
    )
    garbled = admin_call(gateway, "PATCH", "/admin/users/dan", content=b"{not json")
    assert garbled.status_code == 400
    assert [e["action"] for e in _audit(gateway)["data"]] == ["user.create"]


def test_filters_and_the_cursor_page_the_log(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """actor, action, subject, since and until filter; `before` with `next_cursor` pages without repeats;
    a malformed time is a 400 in OpenAI's error shape."""
    gateway = gateway_factory(_config(simulator, tmp_path))
    started = time.time()
    for name in ("u1", "u2", "u3"):
        admin_call(gateway, "POST", "/admin/users", json={"user": name, "tier": "free"})
    admin_call(gateway, "PATCH", "/admin/users/u2", json={"disabled": True})
    assert [e["subject"] for e in _audit(gateway, action="user.create")["data"]] == ["u3", "u2", "u1"]
    assert [e["action"] for e in _audit(gateway, subject="u2")["data"]] == ["user.update", "user.create"]
    assert _audit(gateway, actor="someone else")["data"] == []
    assert len(_audit(gateway, since=started - 1, until=time.time() + 1)["data"]) == 4
    assert _audit(gateway, until=started - 1)["data"] == []
    first = _audit(gateway, limit=3)
    rest = _audit(gateway, limit=3, before=first["next_cursor"])
    assert [e["subject"] for e in first["data"] + rest["data"]] == ["u2", "u3", "u2", "u1"]
    assert rest["next_cursor"] is None
    bad = admin_call(gateway, "GET", "/admin/audit", params={"since": "yesterday"})
    assert bad.status_code == 400, bad.text
    assert "since" in bad.json()["error"]["message"]


def test_entries_survive_a_restart(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """A gateway stopped and started again on the same database lists what the first one recorded."""
    config = _config(simulator, tmp_path)
    first = gateway_factory(config)
    admin_call(first, "POST", "/admin/users", json={"user": "erin", "tier": "free"})
    first.stop()
    second = gateway_factory(config)
    assert [(e["action"], e["subject"]) for e in _audit(second)["data"]] == [("user.create", "erin")]


def test_only_administrators_read_the_log_and_a_forwarded_address_is_believed_only_from_a_proxy(
    simulator: ServerProcess, gateway_factory: GatewayFactory, issuer: TokenIssuer, tmp_path: Path
) -> None:
    """A user's API key and a non-admin user's token are refused on /admin/audit (403, not a guess of the
    admin key: no failure counted); an admin
    group's token is recorded under its user's name; X-Forwarded-For is believed only from a trusted
    proxy, so a client cannot forge where an action came from."""
    config = _config(simulator, tmp_path, issuer)
    gateway = gateway_factory(config)
    refused = httpx.get(gateway.url + "/admin/audit", headers=bearer("freeuser1_key"), timeout=30)
    assert "not an administrator" in assert_error(refused, 403, "not_an_admin")
    wrong = httpx.get(gateway.url + "/admin/audit", headers=bearer("not-a-key-at-all"), timeout=30)
    assert_error(wrong, 401, "invalid_admin_key")
    claims = {"iss": issuer.url, "aud": CLIENT_ID, "exp": int(time.time()) + 600}
    plain = issuer.mint({**claims, "sub": "pat", "groups": ["free-users"]})
    assert_error(
        httpx.get(gateway.url + "/admin/audit", headers=bearer(plain), timeout=30), 403, "not_an_admin"
    )
    boss = issuer.mint({**claims, "sub": "boss", "groups": ["free-users", "maas-admins"]})
    forged = {**bearer(boss), "X-Forwarded-For": "203.0.113.7"}
    answer = httpx.post(
        gateway.url + "/admin/users", json={"user": "fred", "tier": "free"}, headers=forged, timeout=30
    )
    assert answer.status_code == 201, answer.text
    entry = _audit(gateway)["data"][0]
    assert (entry["actor"], entry["actor_kind"], entry["address"]) == ("idp:boss", "oidc", "127.0.0.1")

    behind_proxy = gateway_factory({**config, "server": {"trusted_proxies": ["127.0.0.1"]}})
    answer = httpx.post(
        behind_proxy.url + "/admin/users",
        json={"user": "gina", "tier": "free"},
        headers={**ADMIN_HEADERS, "X-Forwarded-For": "203.0.113.7"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    assert _audit(behind_proxy, subject="gina")["data"][0]["address"] == "203.0.113.7"
