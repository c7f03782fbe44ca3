"""API keys as a lifecycle, over real HTTP: admin and self-service, on SQLite, across two replicas."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.gateways import GatewayFactory
from tests.support.ledger import ADMIN, ADMIN_KEY, ledger_config
from tests.support.limits import chat
from tests.support.processes import ServerProcess, maas


def _config(simulator: ServerProcess, tmp_path: Path, **keys: Any) -> dict[str, Any]:
    config = ledger_config(simulator.url, f"sqlite+aiosqlite:///{tmp_path / 'maas.db'}", tmp_path / "spool")
    config["keys"] = {"cache_ttl": "0.5s", **keys}
    return config


@pytest.fixture
def gateway(simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path) -> ServerProcess:
    return gateway_factory(_config(simulator, tmp_path))


def _admin(gateway: ServerProcess, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, gateway.url + path, headers=ADMIN, timeout=10, **kw)


def _create(gateway: ServerProcess, **body: Any) -> dict[str, Any]:
    response = _admin(
        gateway, "POST", "/admin/keys", json={"user": "alice", "tier": "premium", "name": "k", **body}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_created_key_works_and_is_401_right_after_revocation(gateway: ServerProcess) -> None:
    """A new key (format maas_<prefix>_<secret>) serves requests; revoked, it is 401 on the next request."""
    created = _create(gateway)
    assert created["key"].startswith("maas_" + created["id"].removeprefix("key_") + "_")
    response = chat(gateway.url, created["key"], max_tokens=1)
    assert response.status_code == 200
    assert response.headers["x-ratelimit-limit-requests"] == "20"  # alice is premium
    assert _admin(gateway, "DELETE", f"/admin/keys/{created['id']}").json()["active"] is False
    revoked = chat(gateway.url, created["key"], max_tokens=1)
    assert revoked.status_code == 401
    assert revoked.json()["error"]["code"] == "revoked_api_key"


def test_secrets_are_shown_once_and_stored_as_hashes(gateway: ServerProcess, tmp_path: Path) -> None:
    """Listing never returns a secret, and the database holds only digests."""
    created = _create(gateway)
    listed = _admin(gateway, "GET", "/admin/keys", params={"user": "alice"}).json()["data"]
    assert [key["id"] for key in listed] == [created["id"]]
    assert "key" not in listed[0]
    assert created["key"].encode() not in (tmp_path / "maas.db").read_bytes()


def test_rotation_keeps_the_old_key_for_the_grace_period(gateway: ServerProcess) -> None:
    """After rotation both keys work, and the old one is set to be revoked when the grace period ends (that
    it then stops is checked with a clock in test_key_service_times.py, without waiting for it here)."""
    old = _create(gateway)
    rotated = _admin(gateway, "POST", f"/admin/keys/{old['id']}/rotate", json={"gracePeriod": "1h"}).json()
    new_key = rotated["new"]["key"]
    assert chat(gateway.url, old["key"], max_tokens=1).status_code == 200
    assert chat(gateway.url, new_key, max_tokens=1).status_code == 200
    assert rotated["old"]["active"] is True
    assert rotated["old"]["revoked_at"] - rotated["new"]["created_at"] == pytest.approx(3600, abs=5)
    assert rotated["new"]["expires_at"] == pytest.approx(old["expires_at"], abs=5)  # the rest of its life


def test_expired_key_is_401(gateway: ServerProcess) -> None:
    """A key past its expiry is refused with a message saying so: one key expiring in a running gateway,
    in real time (the rules around expiry are checked with a clock in test_key_service_times.py)."""
    created = _create(gateway, expiresIn="1s")
    assert chat(gateway.url, created["key"], max_tokens=1).status_code == 200
    deadline = time.monotonic() + 10
    while (expired := chat(gateway.url, created["key"], max_tokens=1)).status_code == 200:
        assert time.monotonic() < deadline, "a key created to live 1 s still worked after 10 s"
        time.sleep(0.05)
    assert expired.status_code == 401
    assert expired.json()["error"]["message"] == "The API key has expired."


def test_model_allow_list_is_403_for_other_models(gateway: ServerProcess) -> None:
    """A key limited to one model gets 403 on another, and sees only its model in /v1/models."""
    created = _create(gateway, models=["simulator-embed"])
    assert chat(gateway.url, created["key"], max_tokens=1).status_code == 403
    models = httpx.get(gateway.url + "/v1/models", headers={"Authorization": f"Bearer {created['key']}"})
    assert [m["id"] for m in models.json()["data"]] == ["simulator-embed"]


def test_self_service_keys(gateway: ServerProcess) -> None:
    """A user creates, lists, searches and revokes their own keys; caps give 400; others' ids are 404."""
    me = {"Authorization": "APIKEY premiumuser1_key"}
    url = gateway.url + "/v1/keys"
    first = httpx.post(url, json={"name": "laptop", "expiresIn": "30d"}, headers=me)
    assert first.status_code == 201
    new_key = first.json()["key"]
    assert chat(gateway.url, new_key, max_tokens=1).headers["x-ratelimit-limit-requests"] == "20"
    for name in ("ci-1", "ci-2", "ci-3"):
        assert httpx.post(url, json={"name": name}, headers=me).status_code == 201
    page = httpx.get(url, params={"page": 2, "page_size": 3}, headers=me).json()
    assert page["total"] == 4
    assert len(page["data"]) == 1
    found = httpx.get(url, params={"search": "ci-"}, headers=me).json()
    assert found["total"] == 3
    assert all("key" not in key for key in found["data"])
    too_long = httpx.post(url, json={"name": "x", "expiresIn": "365d"}, headers=me)
    assert too_long.status_code == 400
    assert "at most 90d" in too_long.json()["error"]["message"]
    ephemeral = httpx.post(url, json={"name": "x", "ephemeral": True, "expiresIn": "2h"}, headers=me)
    assert ephemeral.status_code == 400
    assert "at most 1h" in ephemeral.json()["error"]["message"]
    other = httpx.delete(f"{url}/{first.json()['id']}", headers={"Authorization": "APIKEY freeuser1_key"})
    assert other.status_code == 404
    assert httpx.delete(f"{url}/{first.json()['id']}", headers=me).status_code == 200
    assert chat(gateway.url, new_key, max_tokens=1).status_code == 401


def test_bulk_revoke_with_dry_run(gateway: ServerProcess) -> None:
    """A dry run lists what would be revoked and changes nothing; the real run revokes them all."""
    me = {"Authorization": "Bearer enterpriseuser1_key"}
    url = gateway.url + "/v1/keys"
    keys = [httpx.post(url, json={"name": f"k{i}"}, headers=me).json()["key"] for i in range(3)]
    dry = httpx.post(url + "/revoke", json={"all": True, "dryRun": True}, headers=me).json()
    assert dry["dry_run"] is True
    assert len(dry["revoked"]) == 3
    assert chat(gateway.url, keys[0], max_tokens=1).status_code == 200
    real = httpx.post(url + "/revoke", json={"all": True}, headers=me).json()
    assert len(real["revoked"]) == 3
    assert all(chat(gateway.url, key, max_tokens=1).status_code == 401 for key in keys)


def test_revocation_reaches_another_replica_that_cached_the_key(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """Two replicas on one database: a key revoked through one is soon refused by the other, which had it
    cached (the change log tells it; the cache TTL bound is checked with a clock in
    test_key_service_times.py). The 5 s deadline is ten times the TTL: only a key never refused fails."""
    first = gateway_factory(_config(simulator, tmp_path))
    second = gateway_factory(_config(simulator, tmp_path))
    created = _create(first)
    assert chat(second.url, created["key"], max_tokens=1).status_code == 200
    _admin(first, "DELETE", f"/admin/keys/{created['id']}")
    deadline = time.monotonic() + 5
    while (answer := chat(second.url, created["key"], max_tokens=1)).status_code == 200:
        assert time.monotonic() < deadline, "the other replica still accepts the revoked key"
        time.sleep(0.05)
    assert answer.json()["error"]["code"] == "revoked_api_key"


def test_keys_survive_restart_and_expired_keys_are_purged(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """Keys live in the database across restarts; a background task deletes expired ones."""
    first = gateway_factory(_config(simulator, tmp_path, purge_interval="0.5s"))
    kept = _create(first)
    short = _create(first, expiresIn="1s")
    first.stop()
    second = gateway_factory(_config(simulator, tmp_path, purge_interval="0.5s"))
    assert chat(second.url, kept["key"], max_tokens=1).status_code == 200
    deadline = time.monotonic() + 10  # the key ends 1 s after its creation, the purge runs every 0.5 s
    while short["id"] in str(listed := _listed(second)):
        assert time.monotonic() < deadline, f"the expired key was not purged: {listed}"
        time.sleep(0.1)
    assert [key["id"] for key in listed] == [kept["id"]]


def _listed(gateway: ServerProcess) -> list[dict[str, Any]]:
    answer = _admin(gateway, "GET", "/admin/keys", params={"include_inactive": True})
    return list(answer.json()["data"])


def test_users_can_be_moved_and_disabled(gateway: ServerProcess) -> None:
    """Changing a user's tier changes their keys' limits; disabling the user stops every key."""
    created = _create(gateway)
    assert _admin(gateway, "PATCH", "/admin/users/alice", json={"tier": "enterprise"}).status_code == 200
    assert chat(gateway.url, created["key"], max_tokens=1).headers["x-ratelimit-limit-requests"] == "100"
    _admin(gateway, "PATCH", "/admin/users/alice", json={"disabled": True})
    assert chat(gateway.url, created["key"], max_tokens=1).json()["error"]["code"] == "user_disabled"
    bad = _admin(gateway, "PATCH", "/admin/users/alice", json={"tier": "platinum"})
    assert bad.status_code == 400
    assert _admin(gateway, "GET", "/admin/users/nobody").status_code == 404


def test_cli_manages_users_and_keys(gateway: ServerProcess) -> None:
    """`maas users` and `maas keys` drive the admin API: create, list, rotate, revoke."""
    base = ["--url", gateway.url, "--admin-key", ADMIN_KEY]

    def run(*args: str) -> str:
        result = subprocess.run(
            maas(*args, *base),
            capture_output=True,
            text=True,
            check=False,
            env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "Created user bob" in run("users", "create", "bob", "--tier", "free")
    assert "bob" in run("users", "list")
    created = run("keys", "create", "--user", "bob", "--name", "cli", "--expires-in", "1d")
    key_id = created.split("key id: ")[1].split()[0]
    secret = created.split("secret: ")[1].split()[0]
    assert chat(gateway.url, secret, max_tokens=1).status_code == 200
    assert key_id in run("keys", "list", "--user", "bob")
    rotated = run("keys", "rotate", key_id, "--grace-period", "0s")
    assert chat(gateway.url, secret, max_tokens=1).status_code == 401
    new_id = rotated.split("key id: ")[1].split()[0]
    assert "Revoked" in run("keys", "revoke", new_id)
    assert "now on the premium tier" in run("users", "set-tier", "freeuser1", "premium")
    assert "config" in run("users", "list")
    assert "their tier is now free" in run("users", "clear-tier", "freeuser1")
    failed = subprocess.run(
        maas("users", "set-tier", "bob", "gold", *base), capture_output=True, text=True, check=False
    )
    assert failed.returncode == 1
    assert "does not exist" in failed.stderr
