"""The portal as an ASGI application: Starlette routing over the registered pages, server-rendered.

Every page passes the same door (``_door``): no NUL character in its query or form, who is signed in,
whether the page's section allows them, and, for any method but GET and HEAD, the CSRF token of their
session (or, on the sign-in form, of the sign-in cookie). Failures are pages (404, 403, 429, 500), never
tracebacks.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from maas_gateway.http.asgi import ASGIApp
from maas_gateway.portal.context import PageContext, PageError
from maas_gateway.portal.cookies import SIGN_IN_CSRF_COOKIE, remember
from maas_gateway.portal.headers import FormTooLarge, PortalGate
from maas_gateway.portal.navigation import Page
from maas_gateway.portal.rendering import Renderer
from maas_gateway.portal.services import PortalServices
from maas_gateway.portal.signed_in import signed_in

__all__ = ["create_portal_app"]

logger = logging.getLogger("maas_gateway.portal")

_SAFE_METHODS = ("GET", "HEAD")
_STATUS_TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Page not found",
    405: "Method not allowed",
    429: "Too many attempts",
    500: "Something went wrong",
}


def create_portal_app(services: PortalServices, pages: Sequence[Page] | None = None) -> ASGIApp:
    """The portal over ``pages`` (every registered page when omitted)."""
    if pages is None:
        from maas_gateway.portal.pages import all_pages

        pages = all_pages()
    renderer = Renderer(pages)
    routes: list[BaseRoute] = [
        Route("/", _to_portal, methods=["GET", "HEAD"]),
        Route("/portal", _to_portal, methods=["GET", "HEAD"]),
        Mount("/portal/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static"),
    ]
    for page in pages:
        routes.append(Route(page.url, _door(page, services, renderer), methods=list(page.methods)))

    async def page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return renderer.error(exc.status, exc.title, exc.message, exc.headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        title = _STATUS_TITLES.get(exc.status_code, "Error")
        message = "There is no page at this address." if exc.status_code == 404 else f"{title}."
        return renderer.error(exc.status_code, title, message, dict(exc.headers or {}))

    async def too_large(request: Request, exc: Exception) -> Response:
        return renderer.error(413, "Too large", "This form is larger than the portal accepts.", {})

    async def server_error(request: Request, exc: Exception) -> Response:
        logger.exception("The portal failed on %s %s.", request.method, request.url.path)
        message = (
            "The portal could not show this page. Try again; if it keeps failing, tell an administrator."
        )
        return renderer.error(500, _STATUS_TITLES[500], message, {})

    app = Starlette(
        routes=routes,
        exception_handlers={
            PageError: page_error,
            HTTPException: http_error,
            FormTooLarge: too_large,
            Exception: server_error,
        },
    )
    return PortalGate(app, services.settings)


async def _to_portal(request: Request) -> Response:
    return RedirectResponse("/portal/", status_code=302)


def _door(
    page: Page, services: PortalServices, renderer: Renderer
) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint of ``page``: sign-in, section and CSRF checks, then the page function."""

    async def endpoint(request: Request) -> Response:
        await _refuse_nul_characters(request)
        new_sign_in_token = None
        if page.section == "public":
            current = await signed_in(request, services)
            user = current.user if current is not None else None
            expected = request.cookies.get(SIGN_IN_CSRF_COOKIE)
            if not expected:
                new_sign_in_token = expected = secrets.token_urlsafe(32)
        else:
            current = await signed_in(request, services)
            if current is None:
                return _to_sign_in(request)
            user = current.user
            if page.section == "admin" and not user.is_admin:
                raise PageError(403, "Administrators only", "This page is for portal administrators only.")
            expected = current.session.csrf_token
        if request.method not in _SAFE_METHODS:
            await _check_csrf(request, expected if new_sign_in_token is None else None)
        context = PageContext(request, services, user, expected, renderer)
        response = await page.endpoint(context)
        if new_sign_in_token is not None:
            remember(response, SIGN_IN_CSRF_COOKIE, new_sign_in_token, secure=services.secure(request.scope))
        return response

    return endpoint


_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


async def _refuse_nul_characters(request: Request) -> None:
    """A 400 page for a NUL character in the query or a form: PostgreSQL's text cannot hold one (that
    was a 500, even on the sign-in form), and no name or text here has a use for it."""
    texts = [
        *request.path_params.values(),
        *(part for pair in request.query_params.multi_items() for part in pair),
    ]
    if request.method not in _SAFE_METHODS and request.headers.get("content-type", "").startswith(_FORMS):
        form = await request.form()  # read once: Starlette keeps it for the page and the CSRF check
        texts += [
            part for name, value in form.multi_items() for part in (name, value) if isinstance(part, str)
        ]
    if any("\x00" in str(text) for text in texts):
        raise PageError(
            400,
            _STATUS_TITLES[400],
            "A field of this form or address contains a NUL character, which no name or text here may "
            "hold. Remove it and try again.",
        )


async def _check_csrf(request: Request, expected: str | None) -> None:
    """Refuse (403 page) a state-changing request whose form or header lacks the expected token."""
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not expected or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise PageError(
            403,
            "Form expired",
            "This form's security token is missing or does not match your session, so nothing was "
            "changed. Go back, reload the page and submit it again.",
        )


def _to_sign_in(request: Request) -> Response:
    """Unsigned-in: to the sign-in page, coming back here afterwards (GET only; a form is not replayed)."""
    target = "/portal/sign-in"
    if request.method in _SAFE_METHODS:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target += "?next=" + quote(here, safe="/")
    return RedirectResponse(target, status_code=303)
