"""Small portal units: where `next` may lead, when a request came over https, and the page registry."""

from __future__ import annotations

import pytest
from starlette.responses import PlainTextResponse, Response

from maas_gateway.http.forwarded import TrustedProxies, came_over_https
from maas_gateway.portal.context import PageContext
from maas_gateway.portal.cookies import safe_next
from maas_gateway.portal.navigation import Pages, navigation
from maas_gateway.portal.pages import all_pages


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/portal/", "/portal/"),
        ("/portal", "/portal"),
        ("/portal/admin/?q=a", "/portal/admin/?q=a"),
        (None, "/portal/"),
        ("", "/portal/"),
        ("https://evil.example/portal/", "/portal/"),
        ("//evil.example/portal/", "/portal/"),
        ("/\\evil.example", "/portal/"),
        ("/portal\\..\\x", "/portal/"),
        ("javascript:alert(1)", "/portal/"),
        ("/portal/\r\nSet-Cookie: x=1", "/portal/"),
        ("/portal/../v1/models", "/portal/"),
        ("/portalx", "/portal/"),
        ("/admin/users", "/portal/"),
    ],
)
def test_next_stays_inside_the_portal(target: str | None, expected: str) -> None:
    """Only paths inside /portal are followed after sign-in; anything else leads to the overview."""
    assert safe_next(target) == expected


def _scope(peer: str, scheme: str = "http", proto: str | None = None) -> dict[str, object]:
    headers = [] if proto is None else [(b"x-forwarded-proto", proto.encode())]
    return {"client": (peer, 1234), "scheme": scheme, "headers": headers}


def test_https_is_believed_from_the_connection_or_a_trusted_proxy_only() -> None:
    """A TLS connection is https; X-Forwarded-Proto counts from a trusted proxy (its own, last value)
    and never from anyone else."""
    trusted = TrustedProxies(["10.0.0.0/8"])
    assert came_over_https(_scope("192.0.2.1", scheme="https"))
    assert came_over_https(_scope("10.1.1.1", proto="https"), trusted)
    assert not came_over_https(_scope("10.1.1.1", proto="https, http"), trusted)
    assert not came_over_https(_scope("192.0.2.1", proto="https"), trusted)
    assert not came_over_https(_scope("10.1.1.1", proto="https"))


async def _page(context: PageContext) -> Response:
    return PlainTextResponse("")


def test_pages_declare_their_section_by_path() -> None:
    """Admin pages live under /admin/ and nothing else does; a path must start with a slash."""
    pages = Pages()
    with pytest.raises(ValueError, match="under /admin/"):
        pages.page("/admin/x", title="X")(_page)
    with pytest.raises(ValueError, match="under /admin/"):
        pages.page("/x", title="X", section="admin")(_page)
    with pytest.raises(ValueError, match="must start"):
        pages.page("x", title="X")(_page)


def test_navigation_shows_admin_pages_to_admins_only_in_order() -> None:
    """Developer pages come first by order; admin pages only for admins; actions and forms never."""
    pages = Pages()
    pages.page("/usage", title="Usage", order=30)(_page)
    pages.page("/keys", title="Keys", order=20)(_page)
    pages.page("/keys/new", title="New key", methods=("POST",))(_page)
    pages.page("/admin/", title="Users", section="admin")(_page)
    pages.page("/sign-in", title="Sign in", section="public")(_page)
    developer = navigation(pages.entries, is_admin=False, current="/portal/keys")
    assert [(e.title, e.current) for e in developer] == [("Keys", True), ("Usage", False)]
    admin = navigation(pages.entries, is_admin=True, current="/portal/admin/")
    assert [e.url for e in admin] == ["/portal/keys", "/portal/usage", "/portal/admin/"]


def test_every_registered_page_is_unique() -> None:
    """No two registered pages claim the same path and method."""
    claimed = [(page.path, method) for page in all_pages() for method in page.methods]
    assert len(claimed) == len(set(claimed))


class _Reached(Exception):
    """Raised by the stand-in for the API's configuration: the API path was taken."""


def test_the_gateway_dispatches_the_portal_by_prefix_before_any_api_work() -> None:
    """/, /portal and /portal/... go to the portal without reading the API's configuration; API paths
    (including a model prefix that merely starts with "portal") never reach the portal."""
    import asyncio
    from collections.abc import MutableMapping
    from typing import Any

    from maas_gateway.auth.failure_gate import FailureGate
    from maas_gateway.auth.throttle import FailureThrottle
    from maas_gateway.proxy.app import GatewayApp
    from maas_gateway.proxy.pipeline import Pipeline
    from maas_gateway.upstream.memory import InMemoryTransport

    portal_paths: list[str] = []

    async def portal(scope: Any, receive: Any, send: Any) -> None:
        portal_paths.append(scope["path"])

    async def admin(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the admin API was reached")

    def current() -> Any:
        raise _Reached

    failures = FailureGate(FailureThrottle(burst=1, per=1.0, max_addresses=1))

    async def no_backend(request: Any) -> Any:
        raise AssertionError("a backend was reached")

    pipeline = Pipeline(InMemoryTransport(no_backend), failures)
    app = GatewayApp(current, pipeline, admin, None, portal_app=portal)  # type: ignore[arg-type]  # no lifecycle: no lifespan here

    def request(path: str) -> None:
        scope = {"type": "http", "path": path, "method": "GET", "headers": [], "client": ("127.0.0.1", 1)}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            return None

        asyncio.run(app(scope, receive, send))

    for path in ("/", "/portal", "/portal/sign-in"):
        request(path)
    assert portal_paths == ["/", "/portal", "/portal/sign-in"]
    for path in ("/v1/chat/completions", "/portalx/v1/chat/completions", "/v1/models"):
        with pytest.raises(_Reached):
            request(path)
    assert len(portal_paths) == 3
