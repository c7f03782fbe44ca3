"""What a page function gets for one request: the services, the signed-in user, and rendering."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse

from maas_gateway.portal.rendering import Renderer
from maas_gateway.portal.services import PortalServices, PortalUser

__all__ = ["PageContext", "PageError"]


class PageError(Exception):
    """Ends a request with an error page (404, 403, 429, ...); ``message`` is a whole sentence shown as is."""

    def __init__(
        self, status: int, title: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.title = title
        self.message = message
        self.headers = headers or {}


@dataclass(slots=True)
class PageContext:
    request: Request
    services: PortalServices
    user: PortalUser | None  # None only on public pages (sign-in)
    csrf_token: str  # the session's (or the sign-in form's) token; ``csrf_field()`` in templates uses it
    renderer: Renderer

    @property
    def me(self) -> PortalUser:
        """The signed-in user; every page outside the public section has one."""
        if self.user is None:
            raise PageError(403, "Sign in first", "This page needs you to be signed in.")
        return self.user

    async def form(self) -> FormData:
        """The submitted form; its CSRF token has already been checked."""
        return await self.request.form()

    def render(self, template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
        return self.renderer.page(self, template, status=status, **values)

    def redirect(self, url: str) -> RedirectResponse:
        """After a successful POST: 303, so that a reload does not submit the form again."""
        return RedirectResponse(url, status_code=303)
