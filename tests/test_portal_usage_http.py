"""The usage pages over HTTP against a real gateway and the simulator: the developer's own usage (page and
CSV) counts exactly the calls made, never another user's; the admin overview and usage pages are for
administrators, show markup in names as text, and answer bad selections with a sentence."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.support.developer_portal import developer_config
from tests.support.gateways import start_gateway
from tests.support.portal import ADMIN_KEY, DEV_KEY, create_account, sign_in
from tests.support.processes import GatewayProcess, ServerProcess

DEV2_KEY = "dev2_usage_key_0123456789"
MARKUP_USER = '<svg onload="alert(1)">&amp;'
MARKUP_KEY = "markup_usage_key_0123456789"
ESCAPED_USER = "&lt;svg onload=&#34;alert(1)&#34;&gt;&amp;amp;"


@pytest.fixture(scope="module")
def portal(simulator: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """dev1 (2 calls), dev2 (3 calls) and a user named with markup (1 call), with admin and developer
    portal accounts; the calls are made before any test runs."""
    directory = tmp_path_factory.mktemp("portal-usage")
    config = developer_config(simulator.url, directory)
    config["pricing"] = {"currency": "EUR"}  # the pages write the configured currency, never "$"
    config["api_keys"] += [
        {"user": "dev2", "tier": "free", "key": DEV2_KEY},
        {"user": MARKUP_USER, "tier": "free", "key": MARKUP_KEY},
    ]
    create_account(config, "dev1", "openshift")
    create_account(config, "dev2", "openshift2")
    create_account(config, "admin", "admin-password", admin=True)
    server = start_gateway(config, directory, env={"MAAS_ADMIN_KEY": ADMIN_KEY})
    for key, count in ((DEV_KEY, 2), (DEV2_KEY, 3), (MARKUP_KEY, 1)):
        for _ in range(count):
            _call(server.url, key)
    yield server
    server.stop()


def _call(base_url: str, key: str) -> openai.types.CompletionUsage:
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=key, max_retries=0)
    try:
        answer = client.chat.completions.create(
            model="simulator-model", messages=[{"role": "user", "content": "Hello"}], max_tokens=5
        )
    finally:
        client.close()
    assert answer.usage is not None
    return answer.usage


def _ledger(portal: GatewayProcess, user: str) -> dict[str, Any]:
    """The admin API's totals of ``user`` over the last day (the ledger's own answer)."""
    answer = httpx.get(
        f"{portal.url}/admin/usage",
        params={"group_by": "user", "user": user},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    rows = answer.json()["data"]
    assert len(rows) == 1
    return dict(rows[0])


def _figure(html: str, name: str) -> str:
    match = re.search(rf'data-testid="{name}">([^<]+)</dd>', html)
    assert match is not None, f"no {name} on the page"
    return match.group(1)


def test_my_usage_counts_my_calls_as_the_ledger_does(portal: GatewayProcess) -> None:
    """dev1's usage page over 24 h, 7 d and 30 d shows their two calls with the ledger's token counts and
    cost, in the figures, the chart (an SVG with a title) and the table."""
    ledger = _ledger(portal, "dev1")
    assert ledger["requests"] == 2
    with sign_in(portal.url, "dev1", "openshift") as client:
        for period in ("24h", "7d", "30d"):
            page = client.get("/portal/usage", params={"period": period})
            assert page.status_code == 200
            html = page.text
            assert _figure(html, "requests") == "2"
            assert _figure(html, "prompt-tokens") == f"{ledger['prompt_tokens']:,}"
            assert _figure(html, "completion-tokens") == f"{ledger['completion_tokens']:,}"
            assert _figure(html, "cost") == f"{ledger['cost']:,.4f} EUR"
            assert "$" not in html
            assert '<svg class="chart-svg"' in html
            assert "<title id=" in html
            assert "<td>simulator-model</td>" in html


def test_a_user_parameter_never_shows_another_users_usage(portal: GatewayProcess) -> None:
    """``user=dev2`` on dev1's usage page and CSV is ignored: dev1 still sees their own two calls."""
    with sign_in(portal.url, "dev1", "openshift") as client:
        page = client.get("/portal/usage", params={"user": "dev2", "period": "24h"}).text
        assert _figure(page, "requests") == "2"
        assert "dev2" not in page
        download = client.get("/portal/usage.csv", params={"user": "dev2", "period": "24h"})
        rows = list(csv.DictReader(io.StringIO(download.text)))
        assert sum(int(row["requests"]) for row in rows) == 2


def test_my_usage_downloads_as_a_csv_attachment(portal: GatewayProcess) -> None:
    """The CSV is an attachment, per hour (24 h) or day and model, and its sums equal the ledger's."""
    ledger = _ledger(portal, "dev1")
    with sign_in(portal.url, "dev1", "openshift") as client:
        for period, bucket in (("24h", "hour"), ("30d", "day")):
            download = client.get("/portal/usage.csv", params={"period": period})
            assert download.status_code == 200
            assert download.headers["content-type"].startswith("text/csv")
            assert download.headers["content-disposition"] == f'attachment; filename="usage-{period}.csv"'
            rows = list(csv.DictReader(io.StringIO(download.text)))
            assert rows
            assert set(rows[0]) >= {bucket, "model", "requests", "prompt_tokens", "cost"}
            assert sum(int(row["prompt_tokens"]) for row in rows) == ledger["prompt_tokens"]


def test_developers_get_403_on_the_admin_usage_pages(portal: GatewayProcess) -> None:
    """The admin overview, the admin usage page and its CSV refuse a developer with the 403 page."""
    with sign_in(portal.url, "dev1", "openshift") as client:
        for path in ("/portal/admin/", "/portal/admin/usage", "/portal/admin/usage.csv"):
            refused = client.get(path, params={"group": "user"})
            assert refused.status_code == 403, path
            assert "administrators only" in refused.text
            assert "dev2" not in refused.text


def test_the_admin_overview_shows_the_day_and_names_as_text(portal: GatewayProcess) -> None:
    """The overview counts every user's calls of the last day; the top users list the markup user's name
    as text, and the charts are there."""
    with sign_in(portal.url, "admin", "admin-password") as admin:
        html = admin.get("/portal/admin/").text
    assert int(_figure(html, "requests").replace(",", "")) == 6
    assert MARKUP_USER not in html
    assert ESCAPED_USER in html
    assert html.count('<svg class="chart-svg"') == 2
    assert 'aria-current="page">Overview</a>' in html
    assert " EUR</dd>" in html
    assert "$" not in html


def test_admin_usage_groups_pages_and_downloads(portal: GatewayProcess) -> None:
    """Grouped by user the page lists each user with their requests (markup as text); by user and day
    too; the CSV of the selection is an attachment with every group."""
    with sign_in(portal.url, "admin", "admin-password") as admin:
        by_user = admin.get("/portal/admin/usage", params={"group": "user"}).text
        assert "<td>dev1</td>" in by_user
        assert "<td>dev2</td>" in by_user
        assert MARKUP_USER not in by_user
        assert ESCAPED_USER in by_user
        assert " EUR in all." in by_user
        assert "$" not in by_user
        by_day = admin.get("/portal/admin/usage", params=[("group", "user"), ("group", "day")])
        assert by_day.status_code == 200
        assert "by user, day" in by_day.text
        download = admin.get("/portal/admin/usage.csv", params=[("group", "user"), ("group", "model")])
        assert download.status_code == 200
        assert download.headers["content-disposition"].startswith('attachment; filename="usage-')
        rows = {row["user"]: row for row in csv.DictReader(io.StringIO(download.text))}
        assert {name: int(row["requests"]) for name, row in rows.items()} == {
            "dev1": 2,
            "dev2": 3,
            MARKUP_USER: 1,
        }


def test_a_next_page_link_reads_on_from_the_key_it_carries(portal: GatewayProcess) -> None:
    """A page read from the key of the group before it (what "Next page" links carry) lists the groups
    after that key, numbered from its page, with a link back by page number."""
    with sign_in(portal.url, "admin", "admin-password") as admin:
        params = {"group": "user", "page": "2", "after": '["dev1"]'}
        page = admin.get("/portal/admin/usage", params=params)
        assert page.status_code == 200
        assert "<td>dev2</td>" in page.text
        assert "<td>dev1</td>" not in page.text
        assert ESCAPED_USER not in page.text  # '<' sorts before 'd': on the first page
        assert "Groups 101 to 101" in page.text
        assert "page=1" in page.text


@pytest.mark.parametrize(
    ("params", "sentence"),
    [
        ({"from": "2026-13-01"}, "The start date must be a date written as YYYY-MM-DD."),
        ({"to": "yesterday"}, 'name="to" value="yesterday"'),
        ({"from": '"><script>alert(1)</script>'}, "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"),
        ({"from": "2026-05-10", "to": "2026-05-01"}, "The end date must not be before the start date."),
        ({"from": "1970-01-01", "to": "2026-01-01"}, "A date range may span at most 366 days"),
        ({"from": "0001-01-01"}, "The start date must be between the years 1970 and 9000."),
        ({"group": "<b>password</b>"}, "Usage cannot be grouped by &#39;&lt;b&gt;password&lt;/b&gt;&#39;"),
        ({"page": "-1"}, "The page must be a whole number from 1."),
        ({"page": "99999999999999999999"}, "The page must be a whole number from 1."),
        ({"after": "[not json"}, "link is not valid; start again from the first page."),
        ({"after": '["dev1", "m1"]'}, "link is not valid; start again from the first page."),
        ({"group": "day", "after": '["2026-11-01"]'}, "link is not valid; start again from the first page."),
    ],
)
def test_a_bad_selection_is_a_sentence_not_a_500(
    portal: GatewayProcess, params: dict[str, str], sentence: str
) -> None:
    """A malformed, inverted, huge or unknown selection shows the page with a clear message (400) and
    the dates as typed, as text, to correct; the CSV of it is a 400 page with the same sentence."""
    with sign_in(portal.url, "admin", "admin-password") as admin:
        page = admin.get("/portal/admin/usage", params=params)
        assert page.status_code == 400
        assert sentence in page.text
        assert "<b>password</b>" not in page.text
        assert "<script>" not in page.text
        download = admin.get("/portal/admin/usage.csv", params=params)
        assert download.status_code == 400
        assert "<script>" not in download.text
        said = re.search(r'data-testid="selection-error">([^<]+)</p>', page.text)
        assert said is not None
        assert said.group(1) in download.text
