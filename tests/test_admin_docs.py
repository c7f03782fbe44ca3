"""/admin/docs works on a network without a CDN: Swagger UI's files are served by the gateway itself."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx

from tests.support.processes import ServerProcess


class _References(HTMLParser):
    """Every `src` and `href` in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value for name, value in attrs if name in ("src", "href") and value]


def test_the_docs_page_references_no_other_host_and_its_files_are_served(gateway: ServerProcess) -> None:
    """The page names no URL with a host (no CDN, no favicon elsewhere); the script, style sheet and icon
    it references answer 200 with JavaScript, CSS and PNG content types; the script is Swagger UI 5
    (which renders FastAPI's OpenAPI 3.1), and the document it loads is there too."""
    page = httpx.get(gateway.url + "/admin/docs", timeout=30)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert not re.search(r"(https?:)?//[\w.-]+", page.text), "the page must not name another host"
    parser = _References()
    parser.feed(page.text)
    assert len(parser.found) == 3, parser.found
    expected = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for reference in parser.found:
        assert reference.startswith("/admin/docs/static/"), reference
        asset = httpx.get(gateway.url + reference, timeout=30)
        assert asset.status_code == 200, reference
        kind = next(kind for suffix, kind in expected.items() if reference.endswith(suffix))
        assert kind in asset.headers["content-type"], (reference, asset.headers["content-type"])
        if reference.endswith(".js"):
            assert "SwaggerUIBundle" in asset.text
    assert "url: '/admin/openapi.json'" in page.text
    document = httpx.get(gateway.url + "/admin/openapi.json", timeout=30).json()
    assert document["openapi"].startswith("3.1")
    assert {"/admin/audit", "/v1/plan-requests", "/admin/plan-requests/{request_id}/approve"} <= set(
        document["paths"]
    )


def test_files_outside_swagger_ui_are_not_served(gateway: ServerProcess) -> None:
    """A path that climbs out of the static directory, or names a missing file, is a 404 in the API's
    error shape, never a file of the machine."""
    for path in (
        "/admin/docs/static/../../../etc/passwd",
        "/admin/docs/static/%2e%2e/%2e%2e/etc/passwd",
        "/admin/docs/static/nothing.js",
    ):
        answer = httpx.get(gateway.url + path, timeout=30)
        assert answer.status_code == 404, (path, answer.status_code)
        assert "root:" not in answer.text
        assert answer.json()["error"]["code"] == "unknown_url"
