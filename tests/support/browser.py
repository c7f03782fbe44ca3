"""Headless Chromium for the portal's browser tests: Debian's ``chromium`` driven by Playwright (sync API).

One browser per test session (``browser`` fixture); each test opens its own context (cookies apart).
Playwright's own browser download is never used: ``executable_path`` points at the system package, which
``.ci/run`` installs. Without it the tests are skipped, and under CI=true they fail.

The sync API runs its own event loop between calls; tests using it must not run inside an asyncio loop
(plain ``def`` tests, as everywhere in this suite, are fine).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from tests.support.postgres_server import unavailable

__all__ = ["CHROMIUM", "DESKTOP", "PHONE", "browser", "screenshot"]

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
def browser() -> Iterator[Browser]:
    """Headless Chromium for the whole session (skipped without it; a failure under CI=true)."""
    if not Path(CHROMIUM).exists():
        unavailable(
            "Chromium is not installed (apt-get install chromium); the portal's browser tests need it."
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


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
