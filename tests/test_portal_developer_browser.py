"""The developer pages (Keys, Models, Playground) in headless Chromium against a real gateway and the
simulator, with the end-to-end scenario: a key created on the Keys page calls the API through the OpenAI
SDK, and the overview's quota and last calls show it. Each test saves its pages' screenshots."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.support.browser import DESKTOP, browser, chromium_session, screenshot, sign_in_through_form
from tests.support.developer_portal import MARKUP, calls, developer_config
from tests.support.gateways import start_gateway
from tests.support.portal import ADMIN_KEY, create_account, next_address
from tests.support.processes import GatewayProcess, ServerProcess

__all__ = ["browser", "chromium_session"]  # the fixtures, imported to be found here

WINDOW = "1000 requests per 2m"


@pytest.fixture(scope="module")
def portal(simulator: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    directory = tmp_path_factory.mktemp("portal-developer-browser")
    config = developer_config(simulator.url, directory)
    create_account(config, "dev1", "openshift")
    server = start_gateway(config, directory, env={"MAAS_ADMIN_KEY": ADMIN_KEY})
    yield server
    server.stop()


@pytest.fixture
def context(browser: Browser, portal: GatewayProcess) -> Iterator[BrowserContext]:
    """A fresh browser profile from an address of its own, allowed to use the clipboard."""
    opened = browser.new_context(viewport=DESKTOP, extra_http_headers={"X-Forwarded-For": next_address()})
    opened.grant_permissions(["clipboard-read", "clipboard-write"], origin=portal.url)
    yield opened
    opened.close()


def _signed_in(context: BrowserContext, base: str) -> tuple[Page, list[str]]:
    """dev1's overview, and the console errors (policy violations among them) collected from then on."""
    page = context.new_page()
    return page, sign_in_through_form(page, base, "dev1", "openshift")


def _requests_left(page: Page) -> int:
    text = page.locator(".window", has_text=WINDOW).locator(".window-text").inner_text()
    match = re.match(r"(\d+) of 1000 left", text)
    assert match is not None, text
    return int(match.group(1))


def _wait_for_call(page: Page, key_id: str) -> None:
    """Reload the overview until its last calls list ``key_id`` (the ledger writes within a flush)."""
    cell = page.locator("td code", has_text=key_id)
    for _ in range(100):
        if cell.count():
            return
        page.wait_for_timeout(100)
        page.reload()
    assert cell.count(), f"no call with {key_id} in the last calls"


def _create_key(page: Page, base: str, name: str) -> tuple[str, str]:
    """Create a key on the Keys page; its secret (read from the page, as a person would copy it) and id."""
    page.goto(f"{base}/portal/keys")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Expires after").select_option(label="7 days")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("#secret").inner_text().strip()
    key_id = page.locator("dl.facts dd code").first.inner_text()
    return secret, key_id


def test_dev1_creates_a_key_calls_the_api_and_the_overview_shows_it(
    portal: GatewayProcess, context: BrowserContext
) -> None:
    """End to end: dev1 signs in, creates a key on the Keys page, the secret shown once calls the API
    through the OpenAI SDK, the overview's requests left drop by one and its last calls list the key, and
    the Usage page's figures, chart and table show the calls with the ledger's numbers."""
    page, errors = _signed_in(context, portal.url)
    before = _requests_left(page)
    secret, key_id = _create_key(page, portal.url, "my laptop")
    assert secret.startswith("maas_")
    page.get_by_role("button", name="Copy").click()
    page.get_by_role("button", name="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    screenshot(page, "key-created")
    assert calls(portal.url, secret)
    page.goto(f"{portal.url}/portal/")
    assert _requests_left(page) == before - 1
    _wait_for_call(page, key_id)
    page.goto(f"{portal.url}/portal/keys")
    assert page.get_by_role("cell", name="my laptop", exact=True).is_visible()
    assert secret not in page.content()
    page.get_by_role("link", name="Usage").click()
    page.get_by_role("link", name="Last 24 hours").click()
    ledger = _ledger(portal.url)
    assert _figure(page, "requests") == ledger["requests"] >= 1
    assert _figure(page, "prompt-tokens") == ledger["prompt_tokens"]
    assert _figure(page, "completion-tokens") == ledger["completion_tokens"]
    chart = page.get_by_role("img", name="Requests per hour and model")
    assert chart.is_visible()
    assert chart.locator("rect.series-0").count() >= 1
    table = page.get_by_test_id("per-model")
    assert table.get_by_role("cell", name="simulator-model", exact=True).is_visible()
    assert errors == []


def _ledger(base: str) -> dict[str, int]:
    """dev1's totals over the last day as the admin API reads them from the ledger."""
    answer = httpx.get(
        f"{base}/admin/usage",
        params={"group_by": "user", "user": "dev1", "since": str(time.time() - 86400)},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    [row] = answer.json()["data"]
    return {name: int(row[name]) for name in ("requests", "prompt_tokens", "completion_tokens")}


def _figure(page: Page, name: str) -> int:
    return int(page.get_by_test_id(name).inner_text().replace(",", ""))


def test_the_usage_page_charts_my_calls(portal: GatewayProcess, context: BrowserContext) -> None:
    """After a few calls the Usage page draws them per day (7 d) with a legend, lists them in the tables,
    and the CSV link downloads them as an attachment."""
    page, errors = _signed_in(context, portal.url)
    secret, _key_id = _create_key(page, portal.url, "usage charts")
    for _ in range(3):
        assert calls(portal.url, secret)
    page.get_by_role("link", name="Usage").click()
    page.wait_for_url(f"{portal.url}/portal/usage")
    assert page.get_by_role("img", name="Cost (USD) per day and model").is_visible()
    assert page.locator(".legend li", has_text="simulator-model").count() == 3
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename == "usage-7d.csv"
    screenshot(page, "usage")
    screenshot(page, "usage", phone=True)
    page.get_by_role("link", name="Last 24 hours").click()
    screenshot(page, "usage-24h")
    assert errors == []


def test_the_keys_page_lists_rotates_and_revokes(portal: GatewayProcess, context: BrowserContext) -> None:
    """A key named with markup is listed as text; rotating it shows a new secret and the old key as
    retiring; revoking the new one marks it revoked; revoke all asks first."""
    page, errors = _signed_in(context, portal.url)
    _create_key(page, portal.url, MARKUP)
    page.goto(f"{portal.url}/portal/keys")
    row = page.get_by_role("row").filter(has_text=MARKUP).first
    assert row.locator("td.key-name").inner_text().startswith(MARKUP)
    row.get_by_role("button", name="Rotate").click()
    assert page.get_by_role("heading", name="Your rotated key").is_visible()
    rotated_id = page.locator("dl.facts dd code").first.inner_text()
    page.goto(f"{portal.url}/portal/keys")
    assert page.get_by_text("retiring").count() == 1
    screenshot(page, "keys")
    screenshot(page, "keys", phone=True)
    new_row = page.get_by_role("row").filter(has=page.locator("code", has_text=rotated_id))
    new_row.get_by_role("button", name="Revoke").click()
    page.wait_for_url(f"{portal.url}/portal/keys")
    assert new_row.get_by_text("revoked").is_visible()
    page.get_by_role("link", name="Revoke all my keys…").click()
    assert page.get_by_role("heading", name="Revoke all keys").is_visible()
    screenshot(page, "keys-revoke-all")
    assert errors == []


def test_the_models_page_shows_examples_to_copy(portal: GatewayProcess, context: BrowserContext) -> None:
    """Each model has its addresses and examples; a Copy button copies the example's text."""
    page, errors = _signed_in(context, portal.url)
    page.get_by_role("link", name="Models").click()
    page.wait_for_url(f"{portal.url}/portal/models")
    assert page.get_by_role("heading", name="simulator-model").is_visible()
    page.locator("#example-1-python").scroll_into_view_if_needed()
    page.locator("button[data-copy-target='example-1-python']").click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert f'base_url="{portal.url}/v1"' in copied
    screenshot(page, "models")
    screenshot(page, "models", phone=True)
    assert errors == []


def test_the_playground_streams_an_answer_charged_to_me(
    portal: GatewayProcess, context: BrowserContext
) -> None:
    """A message in the playground is answered by the simulator through a streamed /v1/chat/completions
    call with a playground key (not one of dev1's keys), and the call appears in dev1's last calls."""
    page, errors = _signed_in(context, portal.url)
    page.get_by_role("link", name="Playground").click()
    page.wait_for_url(f"{portal.url}/portal/playground")
    streamed: list[str] = []
    page.on(
        "response",
        lambda response: (
            streamed.append(response.headers.get("content-type", ""))
            if response.url.endswith("/v1/chat/completions")
            else None
        ),
    )
    page.get_by_label("Model").select_option("simulator-model")
    page.get_by_label("Message").fill("Hello from the playground")
    with page.expect_request(lambda request: request.url.endswith("/v1/chat/completions")) as sent:
        page.get_by_role("button", name="Send").click()
    body = sent.value.post_data_json
    assert body is not None
    assert body["stream"] is True
    assert sent.value.headers["authorization"].startswith("Bearer maas_")
    answer = page.locator(".from-assistant[data-done='true']")
    answer.wait_for()
    assert answer.inner_text().strip()
    assert streamed
    assert streamed[0].startswith("text/event-stream")
    screenshot(page, "playground")
    screenshot(page, "playground", phone=True)
    page.goto(f"{portal.url}/portal/keys")
    playground_row = page.get_by_role("row").filter(has_text="playground")
    key_id = playground_row.locator("code").first.inner_text()
    page.goto(f"{portal.url}/portal/")
    _wait_for_call(page, key_id)
    assert errors == []


def test_the_playground_says_when_the_session_has_ended(
    portal: GatewayProcess, context: BrowserContext
) -> None:
    """With the session gone (cookies cleared), sending a message shows a sentence asking to sign in
    again, and no call is made to the API."""
    page, _console = _signed_in(context, portal.url)
    page.goto(f"{portal.url}/portal/playground")
    context.clear_cookies()
    api_calls: list[str] = []
    page.on("request", lambda request: api_calls.append(request.url) if "/v1/" in request.url else None)
    page.get_by_label("Message").fill("Hello")
    page.get_by_role("button", name="Send").click()
    error = page.locator(".from-error")
    error.wait_for()
    assert error.inner_text() == "Your portal session has ended; reload the page and sign in again."
    assert api_calls == []
    assert page.locator(".from-user").count() == 1
