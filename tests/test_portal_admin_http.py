"""The portal's admin pages over HTTP against a real gateway: users, keys, plan requests, models and the
audit log, and what an attacker would try on them (developers, missing CSRF tokens, unknown ids, markup).

Every change goes through the admin API's own actions, so it is checked against the admin API and its
audit log (``GET /admin/audit``), where the portal administrator is the actor.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.gateways import start_gateway
from tests.support.polling import wait_until
from tests.support.portal import ADMIN_KEY, create_account, csrf_token, next_address, portal_config, sign_in
from tests.support.processes import GatewayProcess, ServerProcess

MARKUP = '<img src=x onerror="alert(1)"><b>bold</b>'
ESCAPED = "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;&lt;b&gt;bold&lt;/b&gt;"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
DEV2_KEY = "dev2_portal_admin_key"
CHAT = {"model": "simulator-model", "messages": [{"role": "user", "content": "Hello"}]}


@pytest.fixture(scope="module")
def portal(simulator: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway with developers dev1 (config key), dev2 (config key), dev3, dev4, markup (a display name
    with markup) and two administrators, admin and admin2."""
    directory = tmp_path_factory.mktemp("portal-admin")
    config = portal_config(simulator.url, directory)
    config["api_keys"].append({"user": "dev2", "tier": "free", "key": DEV2_KEY})
    create_account(config, "dev1", "openshift")
    for name in ("dev2", "dev3", "dev4", "markup"):
        create_account(config, name, f"{name}-password")
    create_account(config, "admin", "admin-password", admin=True)
    create_account(config, "admin2", "admin2-password", admin=True)
    server = start_gateway(config, directory, env={"MAAS_ADMIN_KEY": ADMIN_KEY})
    answer = httpx.patch(f"{server.url}/admin/users/markup", json={"display_name": MARKUP}, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    yield server
    server.stop()


def _post(client: httpx.Client, path: str, data: dict[str, str]) -> httpx.Response:
    """A form posted the way the browser does, with the session's CSRF token."""
    token = csrf_token(client.get("/portal/").text)
    return client.post(path, data={**data, "csrf_token": token})


def _audit(portal: GatewayProcess, **query: Any) -> list[dict[str, Any]]:
    answer = httpx.get(f"{portal.url}/admin/audit", params=query, headers=ADMIN)
    assert answer.status_code == 200, answer.text
    entries: list[dict[str, Any]] = answer.json()["data"]
    return entries


def _user(portal: GatewayProcess, name: str) -> dict[str, Any]:
    answer = httpx.get(f"{portal.url}/admin/users/{name}", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    user: dict[str, Any] = answer.json()
    return user


def _fact(html: str, name: str) -> str:
    match = re.search(rf"<dt>{re.escape(name)}</dt><dd[^>]*>(.*?)</dd>", html, re.DOTALL)
    assert match is not None, f"no fact '{name}' on the page"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def test_the_users_page_searches_and_a_user_page_shows_the_facts(portal: GatewayProcess) -> None:
    """The list finds users by a part of the name whatever its case; a user's page shows tier, source,
    override, state, active keys and last use; an unknown user is a 404 page."""
    with sign_in(portal.url, "admin", "admin-password") as admin:
        found = admin.get("/portal/admin/users", params={"q": "DEV3"}).text
        assert "<code>dev3</code>" in found
        assert "<code>dev1</code>" not in found
        page = admin.get("/portal/admin/user", params={"user": "dev2"})
        assert page.status_code == 200
        html = page.text
        assert _fact(html, "Tier now") == "free"
        assert _fact(html, "Source") == "admin"  # `maas users create` made the row
        assert _fact(html, "Override") == "none"
        assert _fact(html, "State") == "active"
        assert _fact(html, "Active keys").startswith("0")
        missing = admin.get("/portal/admin/user", params={"user": "nobody-here"})
        assert missing.status_code == 404
        assert "There is no user" in missing.text


def test_a_tier_chosen_in_the_portal_applies_and_is_audited_with_the_admin_as_actor(
    portal: GatewayProcess,
) -> None:
    """The tier select moves dev3 to premium (the admin API agrees); the audit log names the portal
    administrator, the kind `portal` and the client's address; an unknown tier is refused with a page."""
    address = next_address()
    with sign_in(portal.url, "admin", "admin-password", address) as admin:
        answer = _post(admin, "/portal/admin/user/tier", {"user": "dev3", "tier": "premium"})
        assert answer.status_code == 303
        page = admin.get(answer.headers["location"]).text
        assert "The tier was changed" in page
        assert _fact(page, "Tier now") == "premium"
        refused = _post(admin, "/portal/admin/user/tier", {"user": "dev3", "tier": "platinum"})
        assert refused.status_code == 400
        assert "does not exist" in refused.text
    assert _user(portal, "dev3")["tier"] == "premium"
    entry = _audit(portal, subject="dev3", action="user.update")[0]
    assert (entry["actor"], entry["actor_kind"], entry["address"]) == ("admin", "portal", address)
    assert entry["details"]["tier"] == "premium"


def test_disabling_a_user_refuses_their_key_and_ends_their_session(portal: GatewayProcess) -> None:
    """dev2's key works and dev2 is signed in; the admin disables dev2 in the portal: the key is refused
    and the session ends (within a second: the same path as the admin API); enabling restores the key."""
    key = {"Authorization": f"Bearer {DEV2_KEY}"}
    with (
        sign_in(portal.url, "dev2", "dev2-password") as developer,
        sign_in(portal.url, "admin", "admin-password") as admin,
        httpx.Client(base_url=portal.url, timeout=30) as api,
    ):
        assert api.post("/v1/chat/completions", json=CHAT, headers=key).status_code == 200
        assert developer.get("/portal/").status_code == 200
        answer = _post(admin, "/portal/admin/user/state", {"user": "dev2", "action": "disable"})
        assert answer.status_code == 303
        assert "The user is disabled" in admin.get(answer.headers["location"]).text
        try:
            wait_until(
                lambda: api.post("/v1/chat/completions", json=CHAT, headers=key).status_code in (401, 403),
                "the disabled user's key being refused",
                5,
            )
            wait_until(lambda: developer.get("/portal/").status_code == 303, "the session ending", 5)
            assert _user(portal, "dev2")["disabled"] is True
        finally:
            enabled = _post(admin, "/portal/admin/user/state", {"user": "dev2", "action": "enable"})
            assert enabled.status_code == 303
        assert api.post("/v1/chat/completions", json=CHAT, headers=key).status_code == 200
    actions = [entry["details"].get("disabled") for entry in _audit(portal, subject="dev2")]
    assert actions[:2] == [False, True]


def test_an_admin_cannot_disable_themselves(portal: GatewayProcess) -> None:
    """Disabling one's own account from the portal is refused with a page (it would lock them out)."""
    with sign_in(portal.url, "admin2", "admin2-password") as admin:
        refused = _post(admin, "/portal/admin/user/state", {"user": "admin2", "action": "disable"})
        assert refused.status_code == 400
        assert admin.get("/portal/admin/users").status_code == 200


def _admin_key(portal: GatewayProcess, user: str, name: str) -> tuple[str, str]:
    """A key made through the admin API: its id and its secret."""
    answer = httpx.post(f"{portal.url}/admin/keys", json={"user": user, "name": name}, headers=ADMIN)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    return body["id"], body["key"]


def test_keys_are_found_across_users_and_revoked_after_a_confirmation(portal: GatewayProcess) -> None:
    """A search by name finds dev4's key among everyone's; the confirmation page names it and changes
    nothing; confirming revokes it (the key is refused) and the audit log names the portal admin."""
    key_id, secret = _admin_key(portal, "dev4", "nightly-batch")
    headers = {"Authorization": f"Bearer {secret}"}
    with sign_in(portal.url, "admin", "admin-password") as admin:
        listing = admin.get("/portal/admin/keys", params={"q": "NIGHTLY"}).text
        assert key_id in listing
        assert "dev4" in listing
        assert key_id in admin.get("/portal/admin/keys", params={"user": "dev4"}).text
        assert key_id not in admin.get("/portal/admin/keys", params={"user": "dev3"}).text
        confirm = admin.get("/portal/admin/keys/revoke", params={"key": key_id})
        assert confirm.status_code == 200
        assert "Revoke this key?" in confirm.text
        assert httpx.post(f"{portal.url}/v1/chat/completions", json=CHAT, headers=headers).status_code == 200
        done = admin.post(
            "/portal/admin/keys/revoke", data={"key": key_id, "csrf_token": csrf_token(confirm.text)}
        )
        assert done.status_code == 303
        assert "is revoked" in admin.get(done.headers["location"]).text
    refused = httpx.post(f"{portal.url}/v1/chat/completions", json=CHAT, headers=headers)
    assert refused.status_code == 401
    entry = _audit(portal, subject=key_id, action="key.revoke")[0]
    assert (entry["actor"], entry["actor_kind"]) == ("admin", "portal")


def _plan_request(portal: GatewayProcess, user: str, password: str, tier: str, note: str = "") -> str:
    """``user`` asks for ``tier`` on the Plan page; the id of the pending request."""
    with sign_in(portal.url, user, password) as developer:
        answer = _post(developer, "/portal/plan/request", {"tier": tier, "note": note})
        assert answer.status_code == 303, answer.text
    pending = httpx.get(
        f"{portal.url}/admin/plan-requests", params={"status": "pending", "user": user}, headers=ADMIN
    ).json()["data"]
    request_id: str = pending[0]["id"]
    return request_id


def test_two_admins_deciding_one_request_get_one_decision_and_a_clear_page(portal: GatewayProcess) -> None:
    """admin approves dev4's request (dev4 is on enterprise at once); admin2, a moment later, denies the
    same request from a page loaded before: a 409 page says it was approved by admin, nothing changes."""
    request_id = _plan_request(portal, "dev4", "dev4-password", "enterprise", "for the launch")
    with (
        sign_in(portal.url, "admin", "admin-password") as first,
        sign_in(portal.url, "admin2", "admin2-password") as second,
    ):
        stale = second.get("/portal/admin/requests").text
        assert request_id in stale
        assert "for the launch" in stale
        approved = _post(first, "/portal/admin/requests/approve", {"request": request_id})
        assert approved.status_code == 303
        assert "approved" in first.get(approved.headers["location"]).text
        late = second.post(
            "/portal/admin/requests/deny",
            data={"request": request_id, "reason": "too late", "csrf_token": csrf_token(stale)},
        )
        assert late.status_code == 409
        assert "was approved already by admin" in late.text
    assert _user(portal, "dev4")["tier"] == "enterprise"
    assert [entry["action"] for entry in _audit(portal, subject=request_id)] == ["plan_request.approve"]


def test_a_denied_request_keeps_the_tier_and_the_user_sees_the_reason(portal: GatewayProcess) -> None:
    """A denial with a reason leaves dev3's tier as it was; dev3's Plan page lists the reason and lets
    them ask again."""
    before = _user(portal, "dev3")["tier"]
    request_id = _plan_request(portal, "dev3", "dev3-password", "enterprise")
    with sign_in(portal.url, "admin", "admin-password") as admin:
        denied = _post(admin, "/portal/admin/requests/deny", {"request": request_id, "reason": "budget"})
        assert denied.status_code == 303
    assert _user(portal, "dev3")["tier"] == before
    with sign_in(portal.url, "dev3", "dev3-password") as developer:
        page = developer.get("/portal/plan").text
        assert "<td>denied</td><td>budget</td>" in page
        assert 'action="/portal/plan/request"' in page
    entry = _audit(portal, subject=request_id)[0]
    assert (entry["action"], entry["actor"], entry["details"]["reason"]) == (
        "plan_request.deny",
        "admin",
        "budget",
    )


def test_the_models_page_lists_each_model_with_its_backends_state(
    portal: GatewayProcess, simulator: ServerProcess
) -> None:
    """Every configured model appears with its backend's address and its state."""
    with sign_in(portal.url, "admin", "admin-password") as admin:
        page = admin.get("/portal/admin/models").text
    for model in ("simulator-model", "simulator-embed"):
        assert f"<code>{model}</code>" in page
    assert f"<code>{simulator.url}</code>" in page
    assert re.search(r'class="state-(healthy|unhealthy|ejected)"', page)


def test_the_audit_page_filters_and_pages_newest_first(portal: GatewayProcess) -> None:
    """55 changes of one user: the first page shows the newest 50, its link the 5 older ones (no entry
    twice, none lost); filters by actor and action narrow it; unknown filters show no entry."""
    assert httpx.post(
        f"{portal.url}/admin/users", json={"user": "audited", "tier": "free"}, headers=ADMIN
    ).is_success
    for number in range(54):
        answer = httpx.patch(
            f"{portal.url}/admin/users/audited", json={"display_name": f"name {number:02d}"}, headers=ADMIN
        )
        assert answer.is_success
    with sign_in(portal.url, "admin", "admin-password") as admin:
        first = admin.get("/portal/admin/audit", params={"subject": "audited"}).text
        names = re.findall(r"name (\d\d)", first)
        assert names[:2] == ["53", "52"]
        assert len(names) == 50  # the updates 53 down to 04
        older = re.search(r'href="(/portal/admin/audit\?[^"]*before=\d+)"', first)
        assert older is not None
        second = admin.get(older.group(1).replace("&amp;", "&")).text
        assert re.findall(r"name (\d\d)", second) == ["03", "02", "01", "00"]
        assert "user.create" in second
        assert "Older entries" not in second
        by_kind = admin.get(
            "/portal/admin/audit", params={"subject": "audited", "action": "user.create"}
        ).text
        assert "name 53" not in by_kind
        assert "user.create" in by_kind
        nobody = admin.get("/portal/admin/audit", params={"actor": "nobody-acted"}).text
        assert "No entry matches." in nobody


def test_the_plan_page_shows_the_tiers_mine_highlighted_and_one_request_at_a_time(
    portal: GatewayProcess,
) -> None:
    """dev1 sees every tier's limits in words with free highlighted; asking for free is refused with the
    reason; a request is shown as waiting, a second one is refused, withdrawing it allows a new one."""
    with sign_in(portal.url, "dev1", "openshift") as developer:
        page = developer.get("/portal/plan").text
        mine = re.search(r'<section class="card current-tier"[^>]*data-tier="(\w+)"', page)
        assert mine is not None
        assert mine.group(1) == "free"
        assert "5 requests every 2 minutes" in page
        assert "20 requests every 2 minutes" in page
        same = _post(developer, "/portal/plan/request", {"tier": "free"})
        assert same.status_code == 400
        assert "already on the tier" in same.text
        asked = _post(developer, "/portal/plan/request", {"tier": "premium", "note": "a demo"})
        assert asked.status_code == 303
        waiting = developer.get("/portal/plan").text
        assert "it waits for an administrator" in waiting
        request_id = re.search(r'name="request" value="(pr_\w+)"', waiting)
        assert request_id is not None
        again = developer.post(
            "/portal/plan/request",
            data={"tier": "enterprise", "csrf_token": csrf_token(waiting)},
        )
        assert again.status_code == 409
        assert "withdraw it first" in again.text
        withdrawn = _post(developer, "/portal/plan/withdraw", {"request": request_id.group(1)})
        assert withdrawn.status_code == 303
        assert "Your request is withdrawn" in developer.get(withdrawn.headers["location"]).text
        twice = _post(developer, "/portal/plan/withdraw", {"request": request_id.group(1)})
        assert twice.status_code == 409
    state = httpx.get(f"{portal.url}/admin/plan-requests", params={"user": "dev1"}, headers=ADMIN).json()
    assert [request["status"] for request in state["data"]] == ["withdrawn"]


ADMIN_PAGES = (
    "/portal/admin/",
    "/portal/admin/users",
    "/portal/admin/user?user=dev1",
    "/portal/admin/keys",
    "/portal/admin/keys/revoke?key=anything",
    "/portal/admin/requests",
    "/portal/admin/models",
    "/portal/admin/audit",
    "/portal/admin/usage",
    "/portal/admin/usage.csv?group=user",
)


def test_a_developer_gets_403_on_every_admin_page_and_form_and_nothing_changes(
    portal: GatewayProcess,
) -> None:
    """dev1 (with a valid session and CSRF token) is refused every admin page, and every admin form: its
    own tier, disabling dev4, revoking dev4's key, approving its own request all stay undone."""
    key_id, _ = _admin_key(portal, "dev4", "kept")
    request_id = _plan_request(portal, "dev3", "dev3-password", "enterprise", "dev1 approves?")
    with sign_in(portal.url, "dev1", "openshift") as developer:
        for path in ADMIN_PAGES:
            refused = developer.get(path)
            assert refused.status_code == 403, path
            assert "Administrators only" in refused.text
        for path, data in (
            ("/portal/admin/user/tier", {"user": "dev1", "tier": "enterprise"}),
            ("/portal/admin/user/state", {"user": "dev4", "action": "disable"}),
            ("/portal/admin/keys/revoke", {"key": key_id}),
            ("/portal/admin/requests/approve", {"request": request_id}),
            ("/portal/admin/requests/deny", {"request": request_id}),
        ):
            assert _post(developer, path, data).status_code == 403, path
    assert _user(portal, "dev1")["tier"] == "free"
    assert _user(portal, "dev4")["disabled"] is False
    key = httpx.get(f"{portal.url}/admin/keys", params={"user": "dev4"}, headers=ADMIN).json()["data"]
    assert key_id in [k["id"] for k in key]
    request = httpx.get(f"{portal.url}/admin/plan-requests", params={"user": "dev3"}, headers=ADMIN).json()
    assert request["data"][0]["status"] == "pending"
    httpx.post(f"{portal.url}/admin/plan-requests/{request_id}/deny", headers=ADMIN)


def test_admin_forms_without_the_csrf_token_change_nothing(portal: GatewayProcess) -> None:
    """An administrator's session without the form's token (a forged cross-site post) gets 403 pages."""
    key_id, _ = _admin_key(portal, "dev4", "kept-too")
    with sign_in(portal.url, "admin", "admin-password") as admin:
        for path, data in (
            ("/portal/admin/user/tier", {"user": "dev4", "tier": "free"}),
            ("/portal/admin/user/state", {"user": "dev4", "action": "disable"}),
            ("/portal/admin/keys/revoke", {"key": key_id}),
            ("/portal/admin/requests/approve", {"request": "pr_0000000000000000"}),
            ("/portal/plan/request", {"tier": "premium"}),
        ):
            refused = admin.post(path, data={**data, "csrf_token": "forged"})
            assert refused.status_code == 403, path
            assert "security token" in refused.text
            assert admin.post(path, data=data).status_code == 403, path
    assert _user(portal, "dev4")["disabled"] is False
    assert not [entry for entry in _audit(portal, subject=key_id) if entry["action"] == "key.revoke"]


def test_unknown_ids_are_404_pages(portal: GatewayProcess) -> None:
    """Approving, denying or withdrawing an unknown request, revoking an unknown key: a 404 page; and
    withdrawing another user's request is a 404 too, never a 403."""
    other = _plan_request(portal, "dev3", "dev3-password", "enterprise")
    with sign_in(portal.url, "admin", "admin-password") as admin:
        for path, data in (
            ("/portal/admin/requests/approve", {"request": "pr_0000000000000000"}),
            ("/portal/admin/requests/deny", {"request": "pr_0000000000000000"}),
            ("/portal/admin/requests/approve", {"request": ""}),
            ("/portal/admin/keys/revoke", {"key": "no-such-key"}),
        ):
            missing = _post(admin, path, data)
            assert missing.status_code == 404, path
            assert "<h1>Not found</h1>" in missing.text
        assert admin.get("/portal/admin/keys/revoke", params={"key": "no-such-key"}).status_code == 404
    with sign_in(portal.url, "dev1", "openshift") as developer:
        stolen = _post(developer, "/portal/plan/withdraw", {"request": other})
        assert stolen.status_code == 404
    status = httpx.get(f"{portal.url}/admin/plan-requests", params={"user": "dev3"}, headers=ADMIN).json()
    assert status["data"][0]["status"] == "pending"
    httpx.post(f"{portal.url}/admin/plan-requests/{other}/deny", headers=ADMIN)


def test_markup_in_a_display_name_and_a_note_is_shown_as_text(portal: GatewayProcess) -> None:
    """A display name and a plan request note with markup are escaped on the users list, the user's
    page, the requests page and the requester's own Plan page."""
    request_id = _plan_request(portal, "markup", "markup-password", "premium", MARKUP)
    with sign_in(portal.url, "admin", "admin-password") as admin:
        for page in (
            admin.get("/portal/admin/users", params={"q": "markup"}).text,
            admin.get("/portal/admin/user", params={"user": "markup"}).text,
            admin.get("/portal/admin/requests").text,
        ):
            assert MARKUP not in page
            assert ESCAPED in page
    with sign_in(portal.url, "markup", "markup-password") as developer:
        page = developer.get("/portal/plan").text
        assert MARKUP not in page
        assert ESCAPED in page
    httpx.post(f"{portal.url}/admin/plan-requests/{request_id}/deny", headers=ADMIN)
