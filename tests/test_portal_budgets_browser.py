"""The Teams & budgets pages in headless Chromium against a real gateway: a developer finds their team's
budget with its bar and fired alerts through the navigation; an administrator creates a team and adds a
member with the forms, then reads every budget and the alert outbox. Each page is saved as a screenshot
for docs/portal.md, and no page logs a console error (the Content-Security-Policy holds)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.support.browser import DESKTOP, browser, chromium_session, screenshot, sign_in_through_form
from tests.support.budgets_portal import ALERT_SECRET_ENV, ALPHA_KEY, admin_api, budgets_config, call
from tests.support.gateways import start_gateway
from tests.support.polling import wait_until
from tests.support.portal import ADMIN_KEY, create_account, next_address
from tests.support.processes import GatewayProcess, ServerProcess

__all__ = ["browser", "chromium_session"]  # the fixtures, imported to be found here


@pytest.fixture(scope="module")
def portal(simulator: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """dev1 in team alpha (its month budget: 4 requests) after three calls with alpha's key."""
    directory = tmp_path_factory.mktemp("portal-budgets-browser")
    config = budgets_config(simulator.url, directory)
    create_account(config, "dev1", "openshift")
    create_account(config, "admin", "admin-password", admin=True)
    env = {"MAAS_ADMIN_KEY": ADMIN_KEY, ALERT_SECRET_ENV: "budget-alert-secret-0123456789"}
    server = start_gateway(config, directory, env=env)
    try:
        admin_api(server.url, "POST", "/admin/teams", json={"name": "alpha", "display_name": "Alpha lab"})
        admin_api(server.url, "POST", "/admin/teams/alpha/members", json={"user": "dev1"})
        for _ in range(3):
            assert call(server.url, ALPHA_KEY).status_code == 200
        yield server
    finally:
        server.stop()


def _signed_in(
    browser: Browser, base: str, user: str, password: str
) -> tuple[BrowserContext, Page, list[str]]:
    """A browser profile of its own, signed in through the form; the console errors of every page."""
    context = browser.new_context(viewport=DESKTOP, extra_http_headers={"X-Forwarded-For": next_address()})
    page = context.new_page()
    return context, page, sign_in_through_form(page, base, user, password)


def test_a_developer_finds_their_teams_budget_with_its_alerts(
    browser: Browser, portal: GatewayProcess
) -> None:
    """dev1 follows "Teams & budgets": alpha is listed with one member, its month budget shows 3 of 4
    requests used with a bar at 75 % and the 50 % alert fired, resetting at midnight in Berlin."""
    context, page, errors = _signed_in(browser, portal.url, "dev1", "openshift")
    try:
        page.get_by_role("link", name="Teams & budgets").click()
        page.wait_for_url(f"{portal.url}/portal/budgets")
        team = page.get_by_test_id("team")
        assert team.locator("td").all_inner_texts() == ["alpha", "Alpha lab", "1", "member"]

        def alpha_row_fired() -> bool:
            page.reload()
            row = page.locator('tr[data-owner="team:alpha"]')
            return row.get_by_test_id("fired").inner_text().strip() == "50 %"

        wait_until(alpha_row_fired, "the 50 % alert on alpha's budget")
        row = page.locator('tr[data-owner="team:alpha"]')
        assert row.get_by_test_id("used").inner_text() == "3 requests"
        assert row.get_by_test_id("remaining").inner_text() == "1 request"
        assert row.locator("progress").get_attribute("value") == "3"
        assert row.get_by_test_id("resets").inner_text().endswith("00:00 CET (Europe/Berlin)")
        screenshot(page, "budgets")
        screenshot(page, "budgets", phone=True)
        assert errors == []
    finally:
        context.close()


def test_an_admin_creates_a_team_adds_a_member_and_reads_budgets_and_alerts(
    browser: Browser, portal: GatewayProcess
) -> None:
    """The admin creates gamma and adds dev1 with the Teams page's forms (a notice confirms each), then
    the Budgets & alerts page lists alpha's budget and alpha's alerts with their delivery state."""
    context, page, errors = _signed_in(browser, portal.url, "admin", "admin-password")
    try:
        page.get_by_role("link", name="Teams", exact=True).click()
        page.get_by_label("Name", exact=True).fill("gamma")
        page.get_by_label("Display name").fill("Gamma group")
        page.get_by_role("button", name="Create").click()
        assert page.get_by_role("status").inner_text() == "The team gamma was created."
        gamma = page.get_by_test_id("team-card").filter(has_text="Gamma group")
        gamma.get_by_label("Add a member").fill("dev1")
        gamma.get_by_role("button", name="Add").click()
        assert page.get_by_role("status").inner_text() == "dev1 is now a member of gamma."
        assert admin_api(portal.url, "GET", "/admin/teams/gamma").json()["members"] == ["dev1"]
        screenshot(page, "admin-teams")

        page.get_by_role("link", name="Budgets & alerts").click()

        def alerts_listed() -> bool:
            page.reload()
            return page.get_by_test_id("alert-row").count() > 0

        wait_until(alerts_listed, "alpha's alerts on the admin page")
        alpha = page.locator('tr[data-owner="team:alpha"]')
        assert alpha.get_by_test_id("used").inner_text() == "3 requests"
        assert page.get_by_test_id("alert-owner").first.inner_text() == "team:alpha"
        assert page.get_by_test_id("alert-state").first.inner_text() in ("pending", "failed")
        screenshot(page, "admin-budgets")
        assert errors == []
    finally:
        context.close()
