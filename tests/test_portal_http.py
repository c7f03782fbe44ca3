"""The portal over HTTP against a real gateway process: sign-in, sessions, CSRF, throttling, headers,
redirects and the pages' contents, including what an attacker would try."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from tests.support.gateways import GatewayFactory, start_gateway
from tests.support.polling import wait_until
from tests.support.portal import (
    ADMIN_KEY,
    DEV_KEY,
    create_account,
    csrf_token,
    next_address,
    portal_config,
    remaining,
    sign_in,
)
from tests.support.postgres_server import throwaway_database
from tests.support.processes import GatewayProcess, ServerProcess

MARKUP = '<script>alert("x")</script><b>bold</b>'


@pytest.fixture(scope="module")
def portal(simulator: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway with accounts dev1 (free), dev2, markup (display name with markup), victim (for the
    throttle) and admin (admin)."""
    directory = tmp_path_factory.mktemp("portal")
    config = portal_config(simulator.url, directory, sign_in_throttle={"burst": 3, "per": "5m"})
    create_account(config, "dev1", "openshift")
    create_account(config, "dev2", "openshift2")
    create_account(config, "markup", "markup-password")
    create_account(config, "admin", "admin-password", admin=True)
    create_account(config, "victim", "victim-password")
    server = start_gateway(config, directory, env={"MAAS_ADMIN_KEY": ADMIN_KEY})
    answer = httpx.patch(
        f"{server.url}/admin/users/markup",
        json={"display_name": MARKUP},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert answer.status_code == 200, answer.text
    yield server
    server.stop()


def _client(portal: GatewayProcess) -> httpx.Client:
    return httpx.Client(base_url=portal.url, headers={"X-Forwarded-For": next_address()}, timeout=30)


def test_root_and_portal_redirect_and_pages_need_a_session(portal: GatewayProcess) -> None:
    """`/` redirects to /portal/, /portal to /portal/, and a page without a session to sign-in with `next`."""
    with _client(portal) as client:
        root = client.get("/")
        assert (root.status_code, root.headers["location"]) == (302, "/portal/")
        assert client.get("/portal").headers["location"] == "/portal/"
        page = client.get("/portal/admin/?q=a")
        assert page.status_code == 303
        assert page.headers["location"] == "/portal/sign-in?next=/portal/admin/%3Fq%3Da"


def test_sign_in_sets_a_strict_session_cookie_and_shows_the_overview(portal: GatewayProcess) -> None:
    """A right password: 303 to `next`, a cookie that is HttpOnly, SameSite=Lax, Path=/portal, not Secure
    over http; the overview shows the tier."""
    with _client(portal) as client:
        form = client.get("/portal/sign-in")
        answer = client.post(
            "/portal/sign-in",
            data={
                "user": "dev1",
                "password": "openshift",
                "next": "/portal/",
                "csrf_token": csrf_token(form.text),
            },
        )
        assert answer.status_code == 303
        cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and "session" in v)
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert "Path=/portal" in cookie
        assert "Secure" not in cookie
        overview = client.get("/portal/")
        assert overview.status_code == 200
        assert '<span class="tier">free</span>' in overview.text


def test_the_cookie_is_secure_when_a_trusted_proxy_says_https(portal: GatewayProcess) -> None:
    """Behind a trusted proxy that received https (X-Forwarded-Proto), the cookies carry Secure."""
    with _client(portal) as client:
        client.headers["X-Forwarded-Proto"] = "https"
        form = client.get("/portal/sign-in")
        assert "Secure" in form.headers["set-cookie"]
        token = csrf_token(form.text)
        client.cookies.clear()  # a Secure cookie is not sent back over http: hand it over explicitly
        answer = client.post(
            "/portal/sign-in",
            data={"user": "dev1", "password": "openshift", "csrf_token": token},
            headers={"Cookie": f"maas_portal_csrf={token}"},
        )
        cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and "session" in v)
        assert "Secure" in cookie


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(portal: GatewayProcess) -> None:
    """Both are 401 with the same sentence and no session cookie."""
    with _client(portal) as client:
        answers = []
        for user, password in (("dev1", "wrong-password"), ("nobody-at-all", "openshift")):
            form = client.get("/portal/sign-in")
            answers.append(
                client.post(
                    "/portal/sign-in",
                    data={"user": user, "password": password, "csrf_token": csrf_token(form.text)},
                )
            )
        for answer in answers:
            assert answer.status_code == 401
            assert "The user name or the password is not right." in answer.text
            assert "maas_portal_session" not in answer.headers.get("set-cookie", "")


def test_sign_ins_are_throttled_per_address_even_for_the_right_password(portal: GatewayProcess) -> None:
    """After the burst of failures from one address, even the right password gets the 429 page."""
    with _client(portal) as client:
        form = client.get("/portal/sign-in")
        token = csrf_token(form.text)
        for attempt in range(3):
            bad = client.post(
                "/portal/sign-in", data={"user": f"guess{attempt}", "password": "x" * 9, "csrf_token": token}
            )
            assert bad.status_code == 401
        refused = client.post(
            "/portal/sign-in", data={"user": "dev2", "password": "openshift2", "csrf_token": token}
        )
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert "Too many failed sign-ins" in refused.text
        assert "maas_portal_session" not in refused.headers.get("set-cookie", "")


def test_sign_ins_are_throttled_per_account_across_addresses(portal: GatewayProcess) -> None:
    """Guesses at one account from many addresses lock that account's sign-in (other accounts still work)."""
    for _ in range(3):
        with _client(portal) as client:
            token = csrf_token(client.get("/portal/sign-in").text)
            data = {"user": "Victim", "password": "not-the-password", "csrf_token": token}
            assert client.post("/portal/sign-in", data=data).status_code == 401
    with _client(portal) as client:
        token = csrf_token(client.get("/portal/sign-in").text)
        data = {"user": "victim", "password": "victim-password", "csrf_token": token}
        assert client.post("/portal/sign-in", data=data).status_code == 429
    with sign_in(portal.url, "dev2", "openshift2") as other:
        assert other.get("/portal/").status_code == 200


def test_state_changes_without_the_right_csrf_token_are_refused(portal: GatewayProcess) -> None:
    """Sign-out without a token, or with another session's, is a 403 page and the session survives;
    a sign-in form posted without its cookie's token is refused too."""
    with (
        sign_in(portal.url, "dev1", "openshift") as client,
        sign_in(portal.url, "dev1", "openshift") as other,
    ):
        other_token = csrf_token(other.get("/portal/").text)
        for data in ({}, {"csrf_token": ""}, {"csrf_token": other_token}):
            refused = client.post("/portal/sign-out", data=data)
            assert refused.status_code == 403
            assert "security token" in refused.text
        assert client.get("/portal/").status_code == 200
        token = csrf_token(client.get("/portal/").text)
        assert client.post("/portal/sign-out", data={"csrf_token": token}).status_code == 303
        assert client.get("/portal/").status_code == 303
        assert other.get("/portal/").status_code == 200
    with _client(portal) as stranger:
        forged = stranger.post(
            "/portal/sign-in", data={"user": "dev1", "password": "openshift", "csrf_token": "x"}
        )
        assert forged.status_code == 403


def test_a_signed_out_token_cannot_be_replayed(portal: GatewayProcess) -> None:
    """The session cookie copied before sign-out is refused afterwards."""
    with sign_in(portal.url, "dev1", "openshift") as client:
        stolen = client.cookies["maas_portal_session"]
        client.post("/portal/sign-out", data={"csrf_token": csrf_token(client.get("/portal/").text)})
    with _client(portal) as thief:
        thief.cookies.set("maas_portal_session", stolen, path="/portal")
        assert thief.get("/portal/").status_code == 303


def test_next_never_leads_off_the_portal(portal: GatewayProcess) -> None:
    """Sign-in follows `next` only to a /portal path: other sites, //host, backslashes and /admin go home."""
    for target, expected in (
        ("/portal/admin/", "/portal/admin/"),
        ("https://evil.example/", "/portal/"),
        ("//evil.example/portal/", "/portal/"),
        ("/\\evil.example", "/portal/"),
        ("/admin/users", "/portal/"),
        ("/portal/../admin/users", "/portal/"),
    ):
        with _client(portal) as client:
            token = csrf_token(client.get("/portal/sign-in").text)
            data = {"user": "dev1", "password": "openshift", "next": target, "csrf_token": token}
            assert client.post("/portal/sign-in", data=data).headers["location"] == expected, target


def test_disabling_a_user_ends_their_session(portal: GatewayProcess) -> None:
    """An administrator disables dev2 through the admin API: their open session stops working at once."""
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with sign_in(portal.url, "dev2", "openshift2") as client:
        assert client.get("/portal/").status_code == 200
        assert httpx.patch(
            f"{portal.url}/admin/users/dev2", json={"disabled": True}, headers=admin
        ).is_success
        try:
            wait_until(
                lambda: client.get("/portal/").status_code == 303, "the disabled user's session ending", 5
            )
            token = csrf_token(client.get("/portal/sign-in").text)
            again = client.post(
                "/portal/sign-in", data={"user": "dev2", "password": "openshift2", "csrf_token": token}
            )
            assert again.status_code == 403
            assert "disabled" in again.text
        finally:
            httpx.patch(f"{portal.url}/admin/users/dev2", json={"disabled": False}, headers=admin)


def test_a_display_name_with_markup_is_shown_as_text(portal: GatewayProcess) -> None:
    """Markup in a display name is escaped everywhere it is shown (the header and the admin list)."""
    with sign_in(portal.url, "markup", "markup-password") as client:
        page = client.get("/portal/").text
        assert MARKUP not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in page
    with sign_in(portal.url, "admin", "admin-password") as admin:
        listing = admin.get("/portal/admin/users", params={"q": "mark"}).text
        assert MARKUP not in listing
        assert "&lt;b&gt;bold&lt;/b&gt;" in listing


def test_the_admin_section_is_for_admin_accounts_only(portal: GatewayProcess) -> None:
    """A developer gets the 403 page and no admin navigation; an admin sees the overview at the section's
    address, and the users list, which they can search."""
    with sign_in(portal.url, "dev1", "openshift") as client:
        refused = client.get("/portal/admin/")
        assert refused.status_code == 403
        assert "administrators only" in refused.text
        assert "/portal/admin/" not in client.get("/portal/").text
    with sign_in(portal.url, "admin", "admin-password") as admin:
        landing = admin.get("/portal/admin/")
        assert landing.status_code == 200
        assert "<h1>Overview</h1>" in landing.text
        listing = admin.get("/portal/admin/users")
        assert listing.status_code == 200
        assert "<code>dev1</code>" in listing.text
        assert 'href="/portal/admin/users"' in listing.text
        found = admin.get("/portal/admin/users", params={"q": "DEV2"}).text
        assert "<code>dev2</code>" in found
        assert "<code>dev1</code>" not in found


def test_a_call_lowers_the_remaining_quota_shown(portal: GatewayProcess) -> None:
    """The overview's request window drops by one after a call with dev1's key, and the call is listed."""
    with sign_in(portal.url, "dev1", "openshift") as client:
        before = remaining(client.get("/portal/").text, "5 requests per 2m")
        body = {"model": "simulator-model", "messages": [{"role": "user", "content": "Hi"}]}
        answer = httpx.post(
            f"{portal.url}/v1/chat/completions", json=body, headers={"Authorization": f"APIKEY {DEV_KEY}"}
        )
        assert answer.status_code == 200, answer.text
        after = remaining(client.get("/portal/").text, "5 requests per 2m")
        assert after == before - 1
        wait_until(
            lambda: "<td>simulator-model</td>" in client.get("/portal/").text, "the call in last calls"
        )


class _Markup(HTMLParser):
    """Collects what the Content-Security-Policy must never need: inline scripts, handlers, styles."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script":
            self._in_script = True
            if "src" not in names:
                self.problems.append("a script without src")
        if tag == "style":
            self.problems.append("a style element")
        self.problems += [f"{tag} {name}" for name in names if name.startswith("on") or name == "style"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append("inline script text")


def test_every_page_has_the_security_headers_and_no_inline_script(portal: GatewayProcess) -> None:
    """Each page (and error page) carries the CSP without 'unsafe-inline', framing denial, referrer and
    sniffing policies, no-store; its HTML has no inline script, handler or style attribute."""
    with sign_in(portal.url, "admin", "admin-password") as admin, _client(portal) as anonymous:
        answers = [
            anonymous.get("/portal/sign-in"),
            anonymous.get("/portal/no-such-page"),
            admin.get("/portal/"),
            admin.get("/portal/admin/"),
            admin.get("/portal/admin/usage"),
            admin.get("/portal/admin/usage", params={"from": "2020-02-30"}),
            admin.get("/portal/usage"),
            admin.get("/portal/usage", params={"period": "24h"}),
            admin.get("/portal/keys"),
            admin.get("/portal/keys/revoke-all"),
            admin.get("/portal/models"),
            admin.get("/portal/playground"),
            admin.post(
                "/portal/keys",
                data={
                    "name": "headers",
                    "models": "simulator-model",
                    "lifetime": str(30 * 86400.0),
                    "csrf_token": csrf_token(admin.get("/portal/keys").text),
                },
            ),
            *(
                admin.get(f"/portal{path}")
                for path in (
                    "/plan",
                    "/admin/users",
                    "/admin/user?user=dev1",
                    "/admin/keys",
                    "/admin/keys/revoke?key=unknown",
                    "/admin/requests",
                    "/admin/models",
                    "/admin/audit",
                )
            ),
            admin.post("/portal/sign-out", data={}),
        ]
    for answer in answers:
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"
        assert answer.headers["cache-control"] == "no-store"
        parser = _Markup()
        parser.feed(answer.text)
        assert parser.problems == [], (str(answer.url), parser.problems)
        assert 'href="#content"' in answer.text


def test_errors_are_pages_not_tracebacks(portal: GatewayProcess) -> None:
    """An unknown page is a 404 page and a wrong method a 405 page, both HTML."""
    with _client(portal) as client:
        missing = client.get("/portal/no-such-page")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("text/html")
        assert "There is no page at this address." in missing.text
        wrong = client.put("/portal/sign-in")
        assert wrong.status_code == 405
        assert "Traceback" not in wrong.text


def test_a_short_idle_timeout_signs_the_user_out(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """With a 1 s idle timeout, a session left alone is refused (redirect to sign-in) once that passes."""
    config = portal_config(simulator.url, tmp_path, session_idle_timeout=1, session_lifetime="1h")
    create_account(config, "dev1", "openshift")
    server = gateway_factory(config)
    with sign_in(server.url, "dev1", "openshift") as client:
        assert client.get("/portal/").status_code == 200
        # Each look is a use: they are spaced wider than the timeout, so the session is left idle in between.
        wait_until(lambda: client.get("/portal/").status_code == 303, "the idle session ending", 20, 1.5)


def test_a_switched_off_portal_is_not_there(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """`portal.enabled: false`: /, /portal and /portal/sign-in answer 404 as unknown URLs do."""
    server = gateway_factory(portal_config(simulator.url, tmp_path, enabled=False))
    for path in ("/", "/portal", "/portal/sign-in"):
        answer = httpx.get(server.url + path)
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "unknown_url"
    assert re.search(r"portal", httpx.get(server.url + "/v1/models").text) is None


def test_an_oversized_form_is_refused_before_it_is_parsed(portal: GatewayProcess) -> None:
    """A form body over 64 KiB is a 413, whether its Content-Length says so or it streams (chunked)."""
    with _client(portal) as client:
        declared = client.post("/portal/sign-in", content=b"user=" + b"a" * 70_000)
        assert declared.status_code == 413

        def chunks() -> Iterator[bytes]:
            for _ in range(20):
                yield b"a" * 8192

        streamed = client.post(
            "/portal/sign-in",
            content=chunks(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert streamed.status_code == 413
        assert "larger than the portal accepts" in streamed.text


def test_disabling_a_user_on_another_replica_ends_their_session(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """Two replicas share a PostgreSQL database: a session opened on one stops working there soon after
    an administrator disables the user through the other (NOTIFY clears the first one's user cache), and
    a session opened on one is valid on the other (sessions are shared)."""
    with throwaway_database("postgresql", tmp_path) as url:
        config = portal_config(simulator.url, tmp_path)
        config["database"]["url"] = url
        create_account(config, "dev1", "openshift")
        env = {"MAAS_ADMIN_KEY": ADMIN_KEY}
        first, second = gateway_factory(config, env=env), gateway_factory(config, env=env)
        try:
            with sign_in(first.url, "dev1", "openshift") as client:
                shared = client.cookies["maas_portal_session"]
                with httpx.Client(base_url=second.url) as elsewhere:
                    elsewhere.cookies.set("maas_portal_session", shared, path="/portal")
                    assert elsewhere.get("/portal/").status_code == 200
                admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
                disabled = httpx.patch(
                    f"{second.url}/admin/users/dev1", json={"disabled": True}, headers=admin
                )
                assert disabled.status_code == 200, disabled.text
                wait_until(
                    lambda: client.get("/portal/").status_code == 303,
                    "the session ending on the other replica",
                    5,
                )
        finally:
            first.stop()
            second.stop()
