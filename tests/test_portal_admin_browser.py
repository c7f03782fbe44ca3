"""The Plan page and the admin pages in headless Chromium against a real gateway: the issue's scenario
(dev1 asks for premium, an administrator approves in another browser, dev1's new limits apply at once)
and a visit of every admin page, each saved as a screenshot for docs/portal.md."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from openai import OpenAI
from playwright.sync_api import Browser, BrowserContext

from tests.support.browser import DESKTOP, browser, chromium_session, screenshot, sign_in_through_form
from tests.support.portal import ADMIN_KEY, DEV_KEY, next_address, start_portal_gateway
from tests.support.processes import GatewayProcess, ServerProcess

__all__ = ["browser", "chromium_session"]  # the fixtures, imported to be found here


@pytest.fixture(scope="module")
def portal(simulator: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    directory = tmp_path_factory.mktemp("portal-admin-browser")
    server = start_portal_gateway(simulator.url, directory)
    yield server
    server.stop()


def _context(browser: Browser) -> BrowserContext:
    """A browser profile of its own (cookies apart), from a client address of its own."""
    return browser.new_context(viewport=DESKTOP, extra_http_headers={"X-Forwarded-For": next_address()})


def _request_limit(base: str) -> str:
    """x-ratelimit-limit-requests of a chat completion with dev1's key, through the OpenAI SDK."""
    with OpenAI(base_url=f"{base}/v1", api_key=DEV_KEY, max_retries=0) as sdk:
        raw = sdk.chat.completions.with_raw_response.create(
            model="simulator-model", messages=[{"role": "user", "content": "Hello"}]
        )
        return raw.headers["x-ratelimit-limit-requests"]


def test_dev1_asks_for_premium_an_admin_approves_and_the_new_limits_apply_at_once(
    browser: Browser, portal: GatewayProcess
) -> None:
    """dev1 (free: 5 requests per 2 minutes) asks for premium with a note on the Plan page; the admin, in
    another browser, approves it on the Requests page; dev1's overview shows premium on reload and the
    next API call through the OpenAI SDK carries premium's limit (20); the audit log shows the approval
    by the portal admin."""
    developer, administrator = _context(browser), _context(browser)
    try:
        assert _request_limit(portal.url) == "5"
        dev = developer.new_page()
        dev_errors = sign_in_through_form(dev, portal.url, "dev1", "openshift")
        dev.get_by_role("link", name="Plan").click()
        assert dev.locator(".current-tier").get_attribute("data-tier") == "free"
        screenshot(dev, "plan")
        dev.get_by_label("The plan I would like").select_option("premium")
        dev.get_by_label("A note for the administrator (optional)").fill("Our demo needs more requests.")
        dev.get_by_role("button", name="Ask for this plan").click()
        assert dev.get_by_role("status").inner_text().startswith("Your request is waiting")
        assert dev.get_by_role("button", name="Withdraw my request").is_visible()
        screenshot(dev, "plan-pending")
        screenshot(dev, "plan-pending", phone=True)

        admin = administrator.new_page()
        admin_errors = sign_in_through_form(admin, portal.url, "admin", "admin-password")
        admin.locator("ul.admin-nav").get_by_role("link", name="Requests").click()
        assert admin.get_by_role("cell", name="Our demo needs more requests.").is_visible()
        screenshot(admin, "admin-requests")
        admin.get_by_role("button", name="Approve dev1's request for premium").click()
        assert "approved" in admin.get_by_role("status").inner_text()
        assert admin.get_by_role("cell", name="approved").is_visible()

        dev.get_by_role("link", name="Overview").click()
        assert dev.get_by_role("heading", name="Your tier: premium").is_visible()
        assert dev.locator(".window", has_text="20 requests per 2m").count() == 1
        assert _request_limit(portal.url) == "20"

        admin.get_by_role("link", name="Audit log").click()
        row = admin.locator("tr", has_text="plan_request.approve")
        assert row.count() == 1
        assert "admin" in row.inner_text()
        assert "portal" in row.inner_text()
        assert dev_errors == []
        assert admin_errors == []
    finally:
        developer.close()
        administrator.close()


def test_an_admin_visits_users_keys_and_models_and_revokes_a_key_after_confirming(
    browser: Browser, portal: GatewayProcess
) -> None:
    """The admin finds dev1, opens their page (tier, source, keys) and moves them to enterprise, finds
    dev1's key on the Keys page,
    confirms its revocation (the key is refused afterwards), sees the models with their backends, and both
    changes in the audit log under the portal administrator."""
    made = httpx.post(
        f"{portal.url}/admin/keys",
        json={"user": "dev1", "name": "ci-runner"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert made.status_code == 201, made.text
    key_id, secret = made.json()["id"], made.json()["key"]
    context = _context(browser)
    try:
        page = context.new_page()
        errors = sign_in_through_form(page, portal.url, "admin", "admin-password")
        page.locator("ul.admin-nav").get_by_role("link", name="Users").click()
        page.get_by_label("Search users").fill("dev")
        page.get_by_role("button", name="Search").click()
        page.get_by_role("link", name="dev1").click()
        assert page.get_by_role("heading", name="User dev1").is_visible()
        assert page.get_by_test_id("active-keys").inner_text().startswith("1")
        page.get_by_label("Tier", exact=True).select_option("enterprise")
        page.get_by_role("button", name="Change the tier").click()
        assert page.get_by_role("status").inner_text().startswith("The tier was changed")
        assert page.locator("dd", has_text="enterprise").count() >= 1
        screenshot(page, "admin-user")
        screenshot(page, "admin-user", phone=True)

        page.locator("ul.admin-nav").get_by_role("link", name="Keys").click()
        page.get_by_label("Name or id").fill("ci-run")
        page.get_by_role("button", name="Search").click()
        assert page.get_by_role("cell", name=key_id).is_visible()
        screenshot(page, "admin-keys")
        page.get_by_role("link", name="Revoke…").click()
        assert page.get_by_role("heading", name="Revoke this key?").is_visible()
        screenshot(page, "admin-key-revoke")
        page.get_by_role("button", name="Revoke the key").click()
        assert key_id in page.get_by_role("status").inner_text()
        refused = httpx.post(
            f"{portal.url}/v1/chat/completions",
            json={"model": "simulator-model", "messages": [{"role": "user", "content": "Hi"}]},
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert refused.status_code == 401

        page.locator("ul.admin-nav").get_by_role("link", name="Models").click()
        assert page.get_by_role("heading", name="simulator-model").is_visible()
        assert page.locator(".state-healthy").count() >= 1
        screenshot(page, "admin-models")

        page.get_by_role("link", name="Audit log").click()
        assert "portal" in page.locator("tr", has_text="key.revoke").inner_text()
        assert page.locator("tr", has_text="user.update").count() == 1
        screenshot(page, "admin-audit")
        assert errors == []
    finally:
        context.close()


def test_an_admin_reads_the_overview_and_the_usage_by_user_and_day(
    browser: Browser, portal: GatewayProcess
) -> None:
    """After dev1's calls, the admin overview (the admin section's first page) charts the last day and
    lists dev1 among the top users; the Usage page groups by user and day over a chosen range, and an
    inverted range shows a sentence above the form."""
    for _ in range(2):
        _request_limit(portal.url)
    context = _context(browser)
    try:
        page = context.new_page()
        errors = sign_in_through_form(page, portal.url, "admin", "admin-password")
        page.goto(f"{portal.url}/portal/admin/")
        assert page.get_by_role("heading", name="Overview", exact=True).is_visible()
        assert page.get_by_role("img", name="Requests per hour by outcome").is_visible()
        assert page.get_by_test_id("top-users").get_by_role("link", name="dev1").is_visible()
        screenshot(page, "admin-overview")
        screenshot(page, "admin-overview", phone=True)

        page.locator("ul.admin-nav").get_by_role("link", name="Usage").click()
        page.get_by_label("day").check()
        page.get_by_role("button", name="Show").click()
        table = page.get_by_test_id("usage-groups")
        assert table.get_by_role("cell", name="dev1", exact=True).count() >= 1
        screenshot(page, "admin-usage")
        assert errors == []
        page.get_by_label("From (UTC)").fill("2026-05-10")
        page.get_by_label("To (UTC, included)").fill("2026-05-01")
        page.get_by_role("button", name="Show").click()
        assert page.get_by_role("alert").inner_text() == "The end date must not be before the start date."
        screenshot(page, "admin-usage-error")
        assert [error.split(" at ")[0] for error in errors] == [  # the answer's own 400, nothing else
            "Failed to load resource: the server responded with a status of 400 (Bad Request)"
        ]
    finally:
        context.close()
