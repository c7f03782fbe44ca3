"""Signing in through an identity provider in headless Chromium: the button, the provider's own login
form (tests/support/oidc_issuer.py, a real process checking PKCE), and the way back to the portal.

Screenshots: docs/portal/screenshots/sign-in-oidc.png, oidc-provider-form.png, overview-oidc.png.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route

from tests.support.browser import DESKTOP, browser, chromium_session, screenshot
from tests.support.oidc_provider import TokenIssuer, start_token_issuer
from tests.support.portal import next_address
from tests.support.portal_oidc import LABEL, start_oidc_portal
from tests.support.processes import GatewayProcess, ServerProcess

__all__ = ["browser", "chromium_session"]  # the fixtures, imported to be found here


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenIssuer]:
    provider = start_token_issuer(tmp_path_factory.mktemp("idp-browser"))
    yield provider
    provider.server.stop()


@pytest.fixture(scope="module")
def portal(
    simulator: ServerProcess, issuer: TokenIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    server = start_oidc_portal(simulator.url, tmp_path_factory.mktemp("portal-oidc-browser"), issuer)
    yield server
    server.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) from a client address of its own."""
    opened = browser.new_context(viewport=DESKTOP, extra_http_headers={"X-Forwarded-For": next_address()})
    yield opened
    opened.close()


def _sign_in_at_provider(page: Page, portal: GatewayProcess, user: str, *, shots: bool = False) -> None:
    page.goto(f"{portal.url}/portal/")
    button = page.get_by_role("link", name=f"Sign in with {LABEL}")
    assert button.is_visible()
    if shots:
        screenshot(page, "sign-in-oidc")
        screenshot(page, "sign-in-oidc", phone=True)
    button.click()
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(f"{user}-password")
    if shots:
        screenshot(page, "oidc-provider-form")
    page.get_by_role("button", name="Sign in").click()


def test_a_provider_user_signs_in_with_the_button_and_sees_their_tier(
    portal: GatewayProcess, issuer: TokenIssuer, context: BrowserContext
) -> None:
    """alice clicks "Sign in with Test IdP", signs in at the provider and lands on the overview with the
    tier of her group (premium); the provider verified the PKCE verifier of this sign-in."""
    verified = issuer.stats()["pkce_verified"]
    page = context.new_page()
    _sign_in_at_provider(page, portal, "alice", shots=True)
    page.wait_for_url(f"{portal.url}/portal/")
    assert page.get_by_role("heading", name="Your tier: premium").is_visible()
    assert issuer.stats()["pkce_verified"] == verified + 1
    screenshot(page, "overview-oidc")


def test_an_admin_group_member_reaches_the_admin_portal(
    portal: GatewayProcess, context: BrowserContext
) -> None:
    """boss (group idp-admins) signs in the same way and opens /portal/admin/, the admin overview."""
    page = context.new_page()
    _sign_in_at_provider(page, portal, "boss")
    page.wait_for_url(f"{portal.url}/portal/")
    page.goto(f"{portal.url}/portal/admin/")
    assert page.url == f"{portal.url}/portal/admin/"
    assert page.get_by_role("link", name="Users").count() >= 1
    assert "Administrators only" not in page.content()


def test_a_tampered_callback_shows_the_error_page(portal: GatewayProcess, context: BrowserContext) -> None:
    """A callback whose state was altered on the way shows the error page, and the portal still asks
    for a sign-in."""
    page = context.new_page()

    def tamper(route: Route) -> None:  # the provider's redirect back, its state altered on the way
        if route.request.method != "POST":
            route.continue_()
            return
        answer = route.fetch(max_redirects=0)
        headers = {**answer.headers, "location": answer.headers["location"].replace("state=", "state=x")}
        route.fulfill(response=answer, headers=headers)

    page.route("**/authorize", tamper)
    _sign_in_at_provider(page, portal, "alice")
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Sign-in failed").is_visible()
    screenshot(page, "sign-in-oidc-error")
    page.goto(f"{portal.url}/portal/")
    assert "/portal/sign-in" in page.url
