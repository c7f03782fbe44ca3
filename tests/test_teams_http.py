"""Teams over real HTTP: the admin API and CLI manage them (audited), keys are created for a member's
team, and every usage record carries the key's team (SQLite and PostgreSQL ledgers)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory
from tests.support.ledger import ADMIN, ADMIN_KEY, ledger_config
from tests.support.limits import wait_for_fresh_window
from tests.support.polling import wait_until
from tests.support.postgres_server import throwaway_database
from tests.support.processes import ServerProcess, maas
from tests.support.redis_server import RedisServer


def _admin(gateway: ServerProcess, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, gateway.url + path, headers=ADMIN, timeout=30, **kwargs)


def _chat(gateway: ServerProcess, key: str) -> httpx.Response:
    """A one-token chat completion with ``key``."""
    return httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "simulator-model", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with throwaway_database(request.param, tmp_path) as url:
        yield url


def _teams_of_records(gateway: ServerProcess) -> dict[str, str]:
    """Each user's teams as the admin usage report groups them (``group_by=user,team``)."""
    response = _admin(gateway, "GET", "/admin/usage", params={"group_by": "user,team"})
    assert response.status_code == 200, response.text
    return {row["user"]: row["team"] for row in response.json()["data"]}


def test_teams_are_managed_audited_and_keys_charge_their_team(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path, database_url: str
) -> None:
    """An administrator creates a team and adds a member (each change audited); the member creates a
    key for the team and its usage is charged to it; a non-member, or a team that does not exist, is
    refused with the same 400 naming `team`; another user's key for no team carries none."""
    gateway = gateway_factory(ledger_config(simulator.url, database_url, tmp_path / "spool"))
    assert _admin(gateway, "POST", "/admin/teams", json={"name": "research"}).status_code == 201
    assert _admin(gateway, "POST", "/admin/teams", json={"name": "research"}).status_code == 409
    bad_name = _admin(gateway, "POST", "/admin/teams", json={"name": "<b>x</b>"})
    assert bad_name.status_code == 400
    assert bad_name.json()["error"]["param"] == "name"
    added = _admin(gateway, "POST", "/admin/teams/research/members", json={"user": "premiumuser1"})
    assert added.json()["members"] == ["premiumuser1"]
    assert _admin(gateway, "POST", "/admin/teams/nope/members", json={"user": "x"}).status_code == 404

    keys = gateway.url + "/v1/keys"
    member = {"Authorization": "Bearer premiumuser1_key"}
    created = httpx.post(keys, json={"name": "research", "team": "research"}, headers=member)
    assert created.status_code == 201, created.text
    assert created.json()["team"] == "research"
    for outsider, team in (("freeuser1_key", "research"), ("premiumuser1_key", "nope")):
        refused = httpx.post(
            keys, json={"name": "x", "team": team}, headers={"Authorization": f"Bearer {outsider}"}
        )
        assert refused.status_code == 400
        assert refused.json()["error"]["param"] == "team"
    refused = _admin(
        gateway, "POST", "/admin/keys", json={"user": "freeuser1", "name": "x", "team": "research"}
    )
    assert refused.status_code == 400

    with OpenAI(base_url=gateway.url + "/v1", api_key=created.json()["key"], max_retries=0) as sdk:
        sdk.chat.completions.create(
            model="simulator-model", messages=[{"role": "user", "content": "Hi"}], max_tokens=2
        )
    with OpenAI(base_url=gateway.url + "/v1", api_key="freeuser1_key", max_retries=0) as sdk:
        sdk.chat.completions.create(
            model="simulator-model", messages=[{"role": "user", "content": "Hi"}], max_tokens=2
        )
    wait_until(lambda: len(_teams_of_records(gateway)) == 2, "both users' usage in the ledger")
    assert _teams_of_records(gateway) == {"premiumuser1": "research", "freeuser1": None}

    audit = _admin(gateway, "GET", "/admin/audit").json()["data"]
    actions = [(entry["action"], entry["subject"]) for entry in audit]
    assert ("team.create", "research") in actions
    assert ("team.member_add", "research") in actions
    assert actions.count(("team.create", "research")) == 1  # the 409 recorded nothing
    listed = _admin(gateway, "GET", "/admin/keys", params={"user": "premiumuser1"}).json()["data"]
    assert [key["team"] for key in listed] == ["research"]


def test_only_administrators_manage_teams(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """Without a credential `/admin/teams` is 401; a user's own key is 403, for reading and for adding
    themselves to a team; nothing is created."""
    gateway = gateway_factory(ledger_config(simulator.url, None, tmp_path / "spool"))
    assert _admin(gateway, "POST", "/admin/teams", json={"name": "research"}).status_code == 201
    url = gateway.url + "/admin/teams"
    assert httpx.get(url).status_code == 401
    user = {"Authorization": "Bearer premiumuser1_key"}
    assert httpx.get(url, headers=user).status_code == 403
    joined = httpx.post(url + "/research/members", json={"user": "premiumuser1"}, headers=user)
    assert joined.status_code == 403
    assert _admin(gateway, "GET", "/admin/teams/research").json()["members"] == []


def test_the_cli_manages_teams(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """`maas teams create`, `add-member`, `list`, `remove-member` and `delete` act through the admin API;
    an error is the API's sentence and exit code 1."""
    gateway = gateway_factory(ledger_config(simulator.url, None, tmp_path / "spool"))
    env = {**os.environ, "MAAS_ADMIN_KEY": ADMIN_KEY}

    def teams(*args: str) -> subprocess.CompletedProcess[str]:
        command = maas("teams", *args, "--url", gateway.url)
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)

    assert teams("create", "platform", "--display-name", "Platform").returncode == 0
    assert "1 member(s): alice" in teams("add-member", "platform", "alice").stdout
    assert teams("add-member", "platform", "bob").returncode == 0
    listed = teams("list").stdout
    assert "platform" in listed
    assert "alice, bob" in listed
    assert "1 member(s) left" in teams("remove-member", "platform", "alice").stdout
    again = teams("remove-member", "platform", "alice")
    assert again.returncode == 1
    assert "is not a member of the team 'platform'" in again.stderr
    assert teams("delete", "platform").returncode == 0
    assert _admin(gateway, "GET", "/admin/teams").json()["data"] == []


def test_a_team_limit_binds_across_two_users_on_two_replicas(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """Two gateways sharing Redis; alice and bob hold keys of the team `research`, which may make 6
    requests a day together (each of them may make 20). Alternating users and replicas, the 7th request is
    refused, naming the team, for whichever of them sends it; carol, in no team, goes on."""
    redis = RedisServer(tmp_path).start()
    try:
        config = demo_dict(simulator.url)
        config["limits"] = {"enabled": True, "storage": redis.url}
        config["teams"] = {"research": {"limits": [{"limit": 6, "unit": "requests", "window": "day"}]}}
        config["api_keys"] += [
            {"user": "alice", "tier": "premium", "key": "alice-team-key", "team": "research"},
            {"user": "bob", "tier": "premium", "key": "bob-team-key", "team": "research"},
            {"user": "carol", "tier": "premium", "key": "carol-own-key"},
        ]
        gateways = [gateway_factory(config), gateway_factory(config)]
        statuses, messages = [], []
        for index in range(8):
            key = ("alice-team-key", "bob-team-key")[index % 2]
            with OpenAI(base_url=gateways[index // 2 % 2].url + "/v1", api_key=key, max_retries=0) as sdk:
                try:
                    sdk.chat.completions.create(
                        model="simulator-model", messages=[{"role": "user", "content": "Hi"}], max_tokens=1
                    )
                    statuses.append(200)
                except openai.RateLimitError as refused:
                    statuses.append(429)
                    messages.append(str(refused))
        assert statuses == [200] * 6 + [429, 429]
        assert all("Request limit of the team 'research' reached" in message for message in messages)
        with OpenAI(base_url=gateways[1].url + "/v1", api_key="carol-own-key", max_retries=0) as sdk:
            sdk.chat.completions.create(
                model="simulator-model", messages=[{"role": "user", "content": "Hi"}], max_tokens=1
            )
    finally:
        redis.stop()


def test_a_member_who_leaves_a_team_can_no_longer_charge_it(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path, database_url: str
) -> None:
    """premiumuser1 makes a key for `research` and then leaves the team: the key is revoked with the
    membership (a 401 from then on, its revocation audited), so the team's budget no longer pays for
    someone outside it; their key for no team goes on, and a new key for the team is refused. Back in the
    team with a new key, deleting the team revokes that key as well."""
    gateway = gateway_factory(ledger_config(simulator.url, database_url, tmp_path / "spool"))
    assert _admin(gateway, "POST", "/admin/teams", json={"name": "research"}).status_code == 201
    _admin(gateway, "POST", "/admin/teams/research/members", json={"user": "premiumuser1"})
    keys = gateway.url + "/v1/keys"
    member = {"Authorization": "Bearer premiumuser1_key"}
    team_key = httpx.post(keys, json={"name": "research", "team": "research"}, headers=member).json()
    own_key = httpx.post(keys, json={"name": "mine"}, headers=member).json()

    def status(key: str) -> int:
        answer = _chat(gateway, key)
        return answer.status_code

    assert status(team_key["key"]) == 200
    left = _admin(gateway, "DELETE", "/admin/teams/research/members/premiumuser1")
    assert left.status_code == 200, left.text
    assert status(team_key["key"]) == 401
    assert status(own_key["key"]) == 200
    again = httpx.post(keys, json={"name": "again", "team": "research"}, headers=member)
    assert again.status_code == 400
    audit = _admin(gateway, "GET", "/admin/audit").json()["data"]
    removal = next(entry for entry in audit if entry["action"] == "team.member_remove")
    assert removal["details"]["revoked_keys"] == [team_key["id"]]
    assert ("key.revoke", team_key["id"]) in [(entry["action"], entry["subject"]) for entry in audit]

    # Deleting the team revokes the remaining members' keys for it too: a team made again under the same
    # name starts with no one's old keys.
    _admin(gateway, "POST", "/admin/teams/research/members", json={"user": "premiumuser1"})
    second = httpx.post(keys, json={"name": "second", "team": "research"}, headers=member).json()
    assert status(second["key"]) == 200
    assert _admin(gateway, "DELETE", "/admin/teams/research").status_code == 204
    assert _admin(gateway, "POST", "/admin/teams", json={"name": "research"}).status_code == 201
    assert status(second["key"]) == 401
    assert status(own_key["key"]) == 200


def test_a_member_of_two_teams_spends_each_budget_only_with_its_keys(
    simulator: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """alice belongs to `red` and `blue`, each allowed 2 requests a day, and holds a key of each: the red
    key's third request is refused naming `red` while the blue key still has both of blue's, and then is
    refused naming `blue`; neither key spends the other team's budget (passes at once)."""
    wait_for_fresh_window(86400)  # a calendar day in UTC: a test at midnight would see the budgets refill
    config = demo_dict(simulator.url)
    config["teams"] = {
        name: {"limits": [{"limit": 2, "unit": "requests", "window": "day"}]} for name in ("red", "blue")
    }
    config["api_keys"] += [
        {"user": "alice", "tier": "premium", "key": f"alice-{name}-key", "team": name}
        for name in ("red", "blue")
    ]
    gateway = gateway_factory(config)

    def send(key: str) -> tuple[int, str]:
        answer = _chat(gateway, key)
        message = answer.json()["error"]["message"] if answer.status_code != 200 else ""
        return answer.status_code, message

    assert [send("alice-red-key")[0] for _ in range(2)] == [200, 200]
    status, message = send("alice-red-key")
    assert status == 429
    assert "the team 'red'" in message
    assert [send("alice-blue-key")[0] for _ in range(2)] == [200, 200]
    status, message = send("alice-blue-key")
    assert status == 429
    assert "the team 'blue'" in message
