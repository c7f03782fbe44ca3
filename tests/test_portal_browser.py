"""The portal in headless Chromium against a real gateway: what a person signing in sees and can do.

Each test saves screenshots of the pages it visits (docs/portal/screenshots/, shown in docs/portal.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.support.browser import DESKTOP, browser, chromium_session, screenshot
from tests.support.portal import DEV_KEY, next_address, start_portal_gateway
from tests.support.processes import GatewayProcess, ServerProcess

__all__ = ["browser", "chromium_session"]  # the fixtures, imported to be found here


@pytest.fixture(scope="module")
def portal(simulator: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    directory = tmp_path_factory.mktemp("portal-browser")
    server = start_portal_gateway(simulator.url, directory, self_registration={"enabled": True})
    yield server
    server.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) from a client address of its own."""
    opened = browser.new_context(viewport=DESKTOP, extra_http_headers={"X-Forwarded-For": next_address()})
    yield opened
    opened.close()


def _sign_in(page: Page, base: str, user: str, password: str) -> None:
    page.goto(f"{base}/portal/")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def _requests_left(page: Page) -> int:
    text = page.locator(".window", has_text="5 requests per 2m").locator(".window-text").inner_text()
    match = re.match(r"(\d+) of 5 left", text)
    assert match is not None, text
    return int(match.group(1))


def test_dev1_signs_in_sees_the_tier_and_the_quota_drops_after_a_call(
    portal: GatewayProcess, context: BrowserContext
) -> None:
    """From /portal/ to the sign-in form and back; the overview shows tier free, its windows as bars and
    the models; a call with dev1's key lowers the requests left by one and appears in the last calls."""
    page = context.new_page()
    page.goto(f"{portal.url}/portal/")
    assert "/portal/sign-in" in page.url
    screenshot(page, "sign-in")
    _sign_in(page, portal.url, "dev1", "openshift")
    page.wait_for_url(f"{portal.url}/portal/")
    assert page.get_by_role("heading", name="Your tier: free").is_visible()
    assert page.locator("progress").count() == 4
    before = _requests_left(page)
    body = {"model": "simulator-model", "messages": [{"role": "user", "content": "Hello"}]}
    answer = httpx.post(
        f"{portal.url}/v1/chat/completions", json=body, headers={"Authorization": f"APIKEY {DEV_KEY}"}
    )
    assert answer.status_code == 200, answer.text
    page.reload()
    assert _requests_left(page) == before - 1
    for _ in range(100):  # the ledger writes within a flush interval; look again until it has
        if page.locator("td", has_text="simulator-model").count():
            break
        page.wait_for_timeout(100)
        page.reload()
    assert page.locator("td", has_text="simulator-model").count() >= 1
    screenshot(page, "overview")
    screenshot(page, "overview", phone=True)


def test_a_wrong_password_is_shown_on_the_form(portal: GatewayProcess, context: BrowserContext) -> None:
    """A wrong password keeps the visitor on the form with an alert and the name filled in; the
    registration form (switched on here) explains a refused name the same way."""
    page = context.new_page()
    _sign_in(page, portal.url, "dev1", "not-the-password")
    alert = page.get_by_role("alert")
    assert alert.inner_text() == "The user name or the password is not right."
    assert page.get_by_label("User name").input_value() == "dev1"
    screenshot(page, "sign-in-error")
    page.get_by_role("link", name="Create one").click()
    page.get_by_label("User name").fill("Not Valid")
    page.get_by_label("Password", exact=True).fill("a-password")
    page.get_by_label("Password again").fill("a-password")
    page.get_by_role("button", name="Create the account").click()
    assert "lower-case letters" in page.get_by_role("alert").inner_text()
    screenshot(page, "register")


def test_admin_pages_for_admins_and_a_403_page_for_developers(
    browser: Browser, portal: GatewayProcess
) -> None:
    """The admin sees the Admin navigation and the users list; dev1 sees no Admin link and a 403 page."""
    admin = browser.new_context(viewport=DESKTOP, extra_http_headers={"X-Forwarded-For": next_address()})
    developer = browser.new_context(viewport=DESKTOP, extra_http_headers={"X-Forwarded-For": next_address()})
    try:
        page = admin.new_page()
        _sign_in(page, portal.url, "admin", "admin-password")
        page.get_by_role("link", name="Users").click()
        page.wait_for_url(f"{portal.url}/portal/admin/users")
        assert page.get_by_role("cell", name="dev1", exact=True).is_visible()
        page.get_by_label("Search users").fill("admin")
        page.get_by_role("button", name="Search").click()
        assert page.get_by_role("cell", name="dev1", exact=True).count() == 0
        page.get_by_label("Search users").fill("")
        page.get_by_role("button", name="Search").click()
        screenshot(page, "admin-users")
        other = developer.new_page()
        _sign_in(other, portal.url, "dev1", "openshift")
        other.wait_for_url(f"{portal.url}/portal/")
        assert other.get_by_role("link", name="Users").count() == 0
        response = other.goto(f"{portal.url}/portal/admin/")
        assert response is not None
        assert response.status == 403
        screenshot(other, "forbidden")
    finally:
        admin.close()
        developer.close()


def test_pages_load_under_the_policy_and_work_with_the_keyboard(
    portal: GatewayProcess, context: BrowserContext
) -> None:
    """No page breaks the Content-Security-Policy (its stylesheet and script load), the first Tab reaches
    "Skip to content", and signing out with the button returns to the sign-in form."""
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text) if message.type == "error" else None)
    _sign_in(page, portal.url, "dev1", "openshift")
    page.wait_for_url(f"{portal.url}/portal/")
    font = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert "system-ui" in font
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/portal/sign-in$"))
    page.goto(f"{portal.url}/portal/")
    assert "/portal/sign-in" in page.url
    assert violations == []
