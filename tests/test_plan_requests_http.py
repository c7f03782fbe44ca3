"""Plan change requests end to end, over real gateways: a user asks with their own key, an administrator
decides, and an approval moves the user to the new tier's limits at once, on every replica.

Attacks: another user's request id is 404 (read and withdraw); a second pending request, an unknown or
unchanged tier are refused with a sentence; two administrators deciding at once on two replicas (on
PostgreSQL) leave exactly one decision; a decided request cannot be decided again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.gateways import GatewayFactory
from tests.support.identity import ADMIN_HEADERS, admin_call, assert_error, bearer, identity_config
from tests.support.limits import chat
from tests.support.polling import wait_until
from tests.support.postgres_server import create_database, drop_database
from tests.support.processes import ServerProcess


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url = create_database()
    yield url
    drop_database(url)


def _ask(gateway: ServerProcess, key: str, **body: Any) -> httpx.Response:
    return httpx.post(gateway.url + "/v1/plan-requests", json=body, headers=bearer(key), timeout=30)


def _limit(gateway: ServerProcess, key: str) -> str:
    answer = chat(gateway.url, key, max_tokens=1)
    assert answer.status_code == 200, answer.text
    return answer.headers["x-ratelimit-limit-requests"]


def test_an_approved_request_applies_the_new_limits_at_once_on_every_replica(
    simulator: ServerProcess, gateway_factory: GatewayFactory, postgres_url: str, tmp_path: Path
) -> None:
    """freeuser1 asks for premium on one replica; an administrator approves on the other; freeuser1's next
    call is limited by premium's 20 requests on the approving replica at once, and on the first as soon
    as it hears the change (PostgreSQL NOTIFY). The approval is in the audit log."""
    config = identity_config(simulator.url, postgres_url, tmp_path / "spool")
    first = gateway_factory(config)
    second = gateway_factory(
        {**config, "database": {**config["database"], "spool_dir": str(tmp_path / "s2")}}
    )
    assert _limit(first, "freeuser1_key") == "5"
    asked = _ask(first, "freeuser1_key", tier="premium", note="our team grew")
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert (request["user"], request["from_tier"], request["tier"], request["status"]) == (
        "freeuser1",
        "free",
        "premium",
        "pending",
    )
    pending = admin_call(second, "GET", "/admin/plan-requests", params={"status": "pending"}).json()
    assert [r["id"] for r in pending["data"]] == [request["id"]]

    approved = admin_call(second, "POST", f"/admin/plan-requests/{request['id']}/approve")
    assert approved.status_code == 200, approved.text
    assert (approved.json()["status"], approved.json()["decided_by"]) == ("approved", "admin key")
    assert _limit(second, "freeuser1_key") == "20"
    wait_until(lambda: _limit(first, "freeuser1_key") == "20", "the other replica applying premium")

    mine = httpx.get(first.url + "/v1/plan-requests", headers=bearer("freeuser1_key"), timeout=30).json()
    assert [r["status"] for r in mine["data"]] == ["approved"]
    audit = admin_call(first, "GET", "/admin/audit", params={"action": "plan_request.approve"}).json()
    assert audit["data"][0]["subject"] == request["id"]
    assert audit["data"][0]["details"] == {"user": "freeuser1", "from_tier": "free", "tier": "premium"}
    again = admin_call(first, "POST", f"/admin/plan-requests/{request['id']}/deny", json={"reason": "late"})
    assert_error(again, 409, "plan_request_decided")


def test_requests_are_checked_and_private(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """Unknown and unchanged tiers are 400; a second pending request is 409 until the first is withdrawn;
    another user cannot read or withdraw it (404); a denial carries its reason to the user and changes
    nothing; a note with markup is kept as text."""
    config = identity_config(simulator.url, f"sqlite+aiosqlite:///{tmp_path / 'maas.db'}", tmp_path / "spool")
    gateway = gateway_factory(config)
    assert_error(_ask(gateway, "freeuser1_key", tier="platinum"), 400, "unknown_tier")
    assert_error(_ask(gateway, "freeuser1_key", tier="free"), 400, "tier_unchanged")
    first = _ask(gateway, "freeuser1_key", tier="premium", note="<script>alert(1)</script>").json()
    assert first["note"] == "<script>alert(1)</script>"
    assert_error(_ask(gateway, "freeuser1_key", tier="enterprise"), 409, "plan_request_pending")

    theirs = f"{gateway.url}/v1/plan-requests/{first['id']}"
    assert_error(
        httpx.get(theirs, headers=bearer("freeuser2_key"), timeout=30), 404, "plan_request_not_found"
    )
    assert_error(
        httpx.delete(theirs, headers=bearer("freeuser2_key"), timeout=30), 404, "plan_request_not_found"
    )
    listed = httpx.get(gateway.url + "/v1/plan-requests", headers=bearer("freeuser2_key"), timeout=30).json()
    assert listed["data"] == []
    withdrawn = httpx.delete(theirs, headers=bearer("freeuser1_key"), timeout=30)
    assert withdrawn.json()["status"] == "withdrawn"
    assert_error(
        admin_call(gateway, "POST", f"/admin/plan-requests/{first['id']}/approve"),
        409,
        "plan_request_decided",
    )

    second = _ask(gateway, "freeuser1_key", tier="enterprise").json()
    denied = admin_call(
        gateway, "POST", f"/admin/plan-requests/{second['id']}/deny", json={"reason": "budget"}
    )
    assert (denied.json()["status"], denied.json()["reason"]) == ("denied", "budget")
    mine = httpx.get(gateway.url + "/v1/plan-requests", headers=bearer("freeuser1_key"), timeout=30).json()
    assert [(r["status"], r["reason"]) for r in mine["data"]] == [("denied", "budget"), ("withdrawn", None)]
    assert _limit(gateway, "freeuser1_key") == "5"
    unknown = admin_call(gateway, "POST", "/admin/plan-requests/pr_0000000000000000/approve")
    assert_error(unknown, 404, "plan_request_not_found")
    refused = httpx.get(gateway.url + "/admin/plan-requests", headers=bearer("freeuser1_key"), timeout=30)
    assert_error(refused, 403, "not_an_admin")
    approve = httpx.post(
        f"{gateway.url}/admin/plan-requests/{second['id']}/approve",
        headers=bearer("freeuser1_key"),
        timeout=30,
    )
    assert_error(approve, 403, "not_an_admin")
    actions = [e["action"] for e in admin_call(gateway, "GET", "/admin/audit").json()["data"]]
    assert actions == ["plan_request.deny"]


def test_two_administrators_racing_on_two_replicas_leave_one_decision(
    simulator: ServerProcess, gateway_factory: GatewayFactory, postgres_url: str, tmp_path: Path
) -> None:
    """Approve on one replica and deny on another, sent at once, for five users' requests: each time one
    answers 200 and the other 409, the stored status is the winner's, and the user's tier follows it."""
    config = identity_config(simulator.url, postgres_url, tmp_path / "spool")
    first = gateway_factory(config)
    second = gateway_factory(
        {**config, "database": {**config["database"], "spool_dir": str(tmp_path / "s2")}}
    )
    users = [f"racer{i}" for i in range(5)]
    keys = {}
    for user in users:
        created = admin_call(first, "POST", "/admin/keys", json={"user": user, "tier": "free", "name": "k"})
        keys[user] = created.json()["key"]

    async def race(request_id: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30, headers=ADMIN_HEADERS) as client:
            return list(
                await asyncio.gather(
                    client.post(f"{first.url}/admin/plan-requests/{request_id}/approve"),
                    client.post(f"{second.url}/admin/plan-requests/{request_id}/deny", json={}),
                )
            )

    for user in users:
        request = _ask(first, keys[user], tier="premium").json()
        answers = asyncio.run(race(request["id"]))
        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
        winner = next(a.json() for a in answers if a.status_code == 200)
        stored = admin_call(first, "GET", "/admin/plan-requests", params={"user": user}).json()["data"][0]
        assert stored["status"] == winner["status"]
        tier = admin_call(first, "GET", f"/admin/users/{user}").json()["tier"]
        assert tier == ("premium" if winner["status"] == "approved" else "free")
