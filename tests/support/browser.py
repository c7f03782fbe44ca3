"""Headless Chromium for the portal's browser tests: Debian's ``chromium`` driven by Playwright (sync API).

One browser per test session (``chromium_session``), handed to each test by the ``browser`` fixture;
each test opens its own context (cookies apart).
Playwright's own browser download is never used: ``executable_path`` points at the system package, which
``.ci/run`` installs. Without it the tests are skipped, and under CI=true they fail.

The sync API runs its own event loop, marked as running in the test thread between calls; ``browser``
marks it only while a browser test runs, so the suite's ``asyncio.run()`` calls work before and after.
Tests using it are plain ``def`` tests, as everywhere in this suite.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, ViewportSize, sync_playwright

from tests.support.postgres_server import unavailable

__all__ = [
    "CHROMIUM",
    "DESKTOP",
    "PHONE",
    "browser",
    "chromium_session",
    "console_errors",
    "screenshot",
    "sign_in_through_form",
]

CHROMIUM = "/usr/bin/chromium"
_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).parent.parent.parent / "docs" / "portal" / "screenshots"
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
def chromium_session() -> Iterator[tuple[Browser, asyncio.AbstractEventLoop]]:
    """Headless Chromium for the whole session, and Playwright's event loop (skipped without Chromium;
    a failure under CI=true). Tests use the ``browser`` fixture, never this one."""
    if not Path(CHROMIUM).exists():
        unavailable(
            "Chromium is not installed (apt-get install chromium); the portal's browser tests need it."
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=_ARGS, headless=True)
        loop = asyncio.events._get_running_loop()
        assert loop is not None, "Playwright's sync API marks its loop as running between calls"
        asyncio.events._set_running_loop(None)  # parked: other tests may asyncio.run() meanwhile
        try:
            yield chromium, loop
        finally:
            asyncio.events._set_running_loop(loop)
            chromium.close()


@pytest.fixture
def browser(chromium_session: tuple[Browser, asyncio.AbstractEventLoop]) -> Iterator[Browser]:
    """The session's Chromium, for one test.

    Playwright's sync API keeps its event loop marked as running in this thread between calls, which
    would make every later ``asyncio.run()`` in the session fail; the loop is marked for the length of
    a browser test only.
    """
    chromium, loop = chromium_session
    asyncio.events._set_running_loop(loop)
    try:
        yield chromium
    finally:
        asyncio.events._set_running_loop(None)


def screenshot(page: Page, name: str, *, phone: bool = False) -> Path:
    """Save the whole page as docs/portal/screenshots/NAME.png (desktop width; ``phone``: 390 px wide,
    saved as NAME-phone.png), for docs/portal.md."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / (f"{name}-phone.png" if phone else f"{name}.png")
    if phone:
        size = page.viewport_size
        page.set_viewport_size(PHONE)
        page.screenshot(path=str(path), full_page=True)
        if size is not None:
            page.set_viewport_size(size)
    else:
        page.screenshot(path=str(path), full_page=True)
    return path


def console_errors(page: Page) -> list[str]:
    """The console errors of every page ``page`` shows from now on (CSP violations among them), as a list
    that fills while the test goes on. Every error counts, a 404 for /favicon.ico too: base.html links
    the portal's icon."""
    errors: list[str] = []

    def collect(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"{message.text} at {message.location['url']}")

    page.on("console", collect)
    return errors


def sign_in_through_form(page: Page, base: str, user: str, password: str) -> list[str]:
    """Sign in through the portal's form and wait for the overview; the console errors from then on."""
    errors = console_errors(page)
    page.goto(f"{base}/portal/sign-in")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/portal/")
    return errors
