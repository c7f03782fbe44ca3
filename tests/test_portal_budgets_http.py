"""The Teams & budgets pages over HTTP against a real gateway and the simulator: a developer sees their
teams and every budget that applies to them with the numbers the limiter admits on, never another team's;
administrators manage teams through audited, CSRF-checked forms and see every budget and the alert outbox.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.support.budgets_portal import (
    ALERT_SECRET_ENV,
    ALPHA_KEY,
    BETA_KEY,
    admin_api,
    budget_row,
    budgets_config,
    call,
    owners_on,
)
from tests.support.developer_portal import MARKUP
from tests.support.gateways import start_gateway
from tests.support.polling import wait_until
from tests.support.portal import ADMIN_KEY, create_account, csrf_token, sign_in
from tests.support.processes import GatewayProcess, ServerProcess

ALPHA_MONTH = "requests/month (Europe/Berlin)/*"
BETA_WEEK = "cost/week (Europe/Berlin)/*"
TIER_DAY = "requests/day (Europe/Berlin)/*"
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(scope="module")
def portal(simulator: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """dev1 in team alpha, dev2 in team beta (through the admin API), an administrator; no call yet."""
    directory = tmp_path_factory.mktemp("portal-budgets")
    config = budgets_config(simulator.url, directory)
    create_account(config, "dev1", "openshift")
    create_account(config, "dev2", "openshift2")
    create_account(config, "admin", "admin-password", admin=True)
    env = {"MAAS_ADMIN_KEY": ADMIN_KEY, ALERT_SECRET_ENV: "budget-alert-secret-0123456789"}
    server = start_gateway(config, directory, env=env)
    try:
        for team, member in (("alpha", "dev1"), ("beta", "dev2")):
            assert admin_api(server.url, "POST", "/admin/teams", json={"name": team}).status_code == 201
            added = admin_api(server.url, "POST", f"/admin/teams/{team}/members", json={"user": member})
            assert added.status_code == 201, added.text
        yield server
    finally:
        server.stop()


def _page(client: httpx.Client, path: str = "/portal/budgets") -> str:
    answer = client.get(path)
    assert answer.status_code == 200, answer.text
    return answer.text


def _page_once(
    client: httpx.Client, what: str, shows: Callable[[str], bool], path: str = "/portal/budgets"
) -> str:
    """The page once it ``shows`` something another task writes (a charge, an alert the outbox stored)."""

    def ready() -> str | None:
        html = _page(client, path)
        return html if shows(html) else None

    html = wait_until(ready, what)
    assert html is not None
    return html


def _fired(html: str, owner: str, limit_key: str) -> list[int]:
    row = budget_row(html, owner, limit_key)
    return [] if row is None else row.fired


def test_the_page_shows_what_the_limiter_admits_and_the_alerts_fired(portal: GatewayProcess) -> None:
    """After two calls with alpha's key the page shows alpha's month budget at 2 used, 2 left and the 50 %
    alert; exactly two more calls are admitted and the next is refused, after which the page shows 4
    used, none left, every threshold fired, and the reset at next month's midnight in Berlin."""
    for _ in range(2):
        assert call(portal.url, ALPHA_KEY).status_code == 200
    with sign_in(portal.url, "dev1", "openshift") as dev1:
        html = _page_once(
            dev1, "the 50 % alert on dev1's page", lambda html: bool(_fired(html, "team:alpha", ALPHA_MONTH))
        )
        row = budget_row(html, "team:alpha", ALPHA_MONTH)
        assert row is not None
        assert (row.used, row.remaining, row.fired) == ("2 requests", "2 requests", [50])
        statuses = [call(portal.url, ALPHA_KEY).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        html = _page_once(
            dev1,
            "the 100 % alert on dev1's page",
            lambda html: 100 in _fired(html, "team:alpha", ALPHA_MONTH),
        )
        row = budget_row(html, "team:alpha", ALPHA_MONTH)
        assert row is not None
        assert (row.used_count, row.remaining_count, row.fired) == (4, 0, [50, 80, 90, 100])
        now = datetime.datetime.now(BERLIN)
        first = (now.replace(day=1) + datetime.timedelta(days=32)).replace(day=1)
        assert row.resets.startswith(first.strftime("%Y-%m-01 00:00 "))
        assert row.resets.endswith("(Europe/Berlin)")
        # The tier's day budget counts every free user's calls together: the 4 admitted ones so far.
        tier = budget_row(html, "tier:free", TIER_DAY)
        assert tier is not None
        assert tier.used_count >= 4


def _charged(html: str) -> bool:
    row = budget_row(html, "team:beta", BETA_WEEK)
    return row is not None and row.used != "0.00 CHF"


def test_a_money_budget_shows_the_currency_code_and_what_the_limiter_reports(portal: GatewayProcess) -> None:
    """dev2's team beta has 0.50 CHF a week: after a call the page shows used and left in CHF (no '$'),
    and what is left is exactly the call's x-ratelimit-remaining-cost (sent once its cost was counted)."""
    answer = call(portal.url, BETA_KEY)
    assert answer.status_code == 200
    header = Decimal(answer.headers["x-ratelimit-remaining-cost"])
    assert Decimal("0") < header < Decimal("0.5")
    with sign_in(portal.url, "dev2", "openshift2") as dev2:
        html = _page_once(dev2, "the call's cost on dev2's page", _charged)
        row = budget_row(html, "team:beta", BETA_WEEK)
        assert row is not None
        assert row.used.endswith(" CHF")
        assert row.remaining.endswith(" CHF")
        assert "$" not in html
        assert "0.50 CHF" in html  # the limit
        assert Decimal(row.remaining.removesuffix(" CHF").replace(",", "")) == header
        assert Decimal(row.used.removesuffix(" CHF")) + header == Decimal("0.5")
        monday = datetime.datetime.now(BERLIN).date() + datetime.timedelta(days=1)
        while monday.weekday() != 0:
            monday += datetime.timedelta(days=1)
        assert row.resets.startswith(f"{monday.isoformat()} 00:00 ")


def test_a_member_of_one_team_never_sees_another_teams_budget(portal: GatewayProcess) -> None:
    """dev1 (alpha) sees alpha's, their own, the tier's budgets, never beta's, whatever parameter asks;
    dev2 the other way round; neither sees the other's alerts."""
    assert call(portal.url, BETA_KEY).status_code == 200
    with sign_in(portal.url, "dev1", "openshift") as dev1:
        for query in ("", "?user=dev2", "?team=beta", "?owner=team:beta"):
            html = _page(dev1, "/portal/budgets" + query)
            owners = owners_on(html)
            assert "team:alpha" in owners
            assert "dev1" in owners
            assert "tier:free" in owners
            assert "team:beta" not in owners
            assert "dev2" not in owners
            assert "beta" not in html
    with sign_in(portal.url, "dev2", "openshift2") as dev2:
        html = _page(dev2, "/portal/budgets?user=dev1")
        owners = owners_on(html)
        assert "team:beta" in owners
        assert "team:alpha" not in owners
        assert "alpha" not in html
        assert "dev1" not in owners


def test_admins_manage_teams_through_the_portal_and_a_removed_member_stops_seeing_the_budget(
    portal: GatewayProcess,
) -> None:
    """An administrator creates gamma (its display name with markup shown as text) and adds dev1, who
    then sees gamma's budget; once removed, dev1 no longer does. Each change is in the audit log."""
    with sign_in(portal.url, "admin", "admin-password") as admin:
        token = csrf_token(_page(admin, "/portal/admin/teams"))
        created = admin.post(
            "/portal/admin/teams/create", data={"name": "gamma", "display_name": MARKUP, "csrf_token": token}
        )
        assert created.status_code == 303
        added = admin.post(
            "/portal/admin/teams/members",
            data={"team": "gamma", "user": "dev1", "action": "add", "csrf_token": token},
        )
        assert added.status_code == 303
        listing = _page(admin, "/portal/admin/teams")
        assert MARKUP not in listing
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in listing
        assert '<li data-testid="member"><code>dev1</code>' in listing
        with sign_in(portal.url, "dev1", "openshift") as dev1:
            html = _page(dev1)
            assert "team:gamma" in owners_on(html)
            assert '<tr data-testid="team"><td><code>gamma</code></td>' in html
            removed = admin.post(
                "/portal/admin/teams/members",
                data={"team": "gamma", "user": "dev1", "action": "remove", "csrf_token": token},
            )
            assert removed.status_code == 303
            html = _page(dev1)
            assert "team:gamma" not in owners_on(html)
            assert "gamma" not in html
    audit = admin_api(portal.url, "GET", "/admin/audit", params={"subject": "gamma"}).json()["data"]
    actions = sorted(entry["action"] for entry in audit)
    assert actions == ["team.create", "team.member_add", "team.member_remove"]
    assert {(entry["actor"], entry["actor_kind"]) for entry in audit} == {("admin", "portal")}


def test_refusals_are_page_messages_and_a_missing_csrf_token_changes_nothing(portal: GatewayProcess) -> None:
    """A form without its CSRF token is refused with 403 and creates nothing; a bad team name (markup),
    an existing team and a member who is not one come back as the page with a sentence, not a traceback."""
    with sign_in(portal.url, "admin", "admin-password") as admin:
        forged = admin.post("/portal/admin/teams/create", data={"name": "delta"})
        assert forged.status_code == 403
        added = admin.post(
            "/portal/admin/teams/members", data={"team": "alpha", "user": "x", "action": "add"}
        )
        assert added.status_code == 403
        assert admin_api(portal.url, "GET", "/admin/teams/delta").status_code == 404
        assert "x" not in admin_api(portal.url, "GET", "/admin/teams/alpha").json()["members"]
        token = csrf_token(_page(admin, "/portal/admin/teams"))
        bad = admin.post("/portal/admin/teams/create", data={"name": MARKUP, "csrf_token": token})
        assert bad.status_code == 400
        assert "A team&#39;s name is 1 to 100 letters" in bad.text
        assert MARKUP not in bad.text
        again = admin.post("/portal/admin/teams/create", data={"name": "alpha", "csrf_token": token})
        assert again.status_code == 409
        assert "The team &#39;alpha&#39; already exists." in again.text
        absent = admin.post(
            "/portal/admin/teams/members",
            data={"team": "alpha", "user": "nobody", "action": "remove", "csrf_token": token},
        )
        assert absent.status_code == 404
        assert "is not a member of the team" in absent.text
        assert "Traceback" not in bad.text + again.text + absent.text


def test_developers_get_403_on_the_admin_budget_and_team_pages(portal: GatewayProcess) -> None:
    """A developer's session is refused the admin pages and the team forms, even with a valid token."""
    with sign_in(portal.url, "dev1", "openshift") as dev1:
        token = csrf_token(_page(dev1))
        for path in ("/portal/admin/teams", "/portal/admin/budgets"):
            assert dev1.get(path).status_code == 403
        created = dev1.post("/portal/admin/teams/create", data={"name": "epsilon", "csrf_token": token})
        assert created.status_code == 403
    assert admin_api(portal.url, "GET", "/admin/teams/epsilon").status_code == 404


def test_the_admin_page_lists_every_budget_and_the_alert_outbox(portal: GatewayProcess) -> None:
    """After alpha's budget is spent, the admin page shows alpha's and beta's budgets and the users', and
    the outbox's alerts with their state: the webhook refuses connections, so each fails after one
    attempt with its error."""
    for _ in range(4):
        call(portal.url, ALPHA_KEY)
    with sign_in(portal.url, "admin", "admin-password") as admin:
        html = _page_once(
            admin,
            "a failed delivery on the admin page",
            lambda html: ">failed</span>" in html,
            "/portal/admin/budgets",
        )
        owners = owners_on(html)
        assert {"team:alpha", "team:beta", "dev1", "dev2", "tier:free"} <= owners
        alpha = budget_row(html, "team:alpha", ALPHA_MONTH)
        assert alpha is not None
        assert alpha.used_count == 4
        assert '<td data-testid="alert-owner"><code>team:alpha</code></td>' in html
        assert '<td class="num" data-testid="alert-attempts">1</td>' in html  # given up after one attempt
        assert re.search(r'<td data-testid="alert-error">[^<]+</td>', html)  # the connection's error
        assert "Traceback" not in html
