"""The portal's pages and how they are found: each page module declares its pages on a ``Pages``.

A page is a path under ``/portal`` (admin pages under ``/portal/admin``), a title, a section and an order
in the navigation, and an async function from a ``PageContext`` to a response. Pages with ``nav=False``
are actions (form targets) or details that the navigation does not list.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from starlette.responses import Response

if TYPE_CHECKING:
    from maas_gateway.portal.context import PageContext

__all__ = ["NavEntry", "Page", "Pages", "Section", "navigation"]

Section = Literal["public", "developer", "admin"]
Endpoint = Callable[["PageContext"], Awaitable[Response]]
PREFIX = "/portal"


@dataclass(frozen=True, slots=True)
class Page:
    path: str  # under /portal: "/" is the overview, "/admin/" the admin landing
    title: str
    section: Section
    order: int
    endpoint: Endpoint
    methods: tuple[str, ...]
    nav: bool

    @property
    def url(self) -> str:
        return PREFIX + self.path


@dataclass(frozen=True, slots=True)
class NavEntry:
    title: str
    url: str
    section: Section
    current: bool


class Pages:
    """The pages one module contributes; ``maas_gateway.portal.pages`` lists every module's ``pages``."""

    def __init__(self) -> None:
        self.entries: list[Page] = []

    def page(
        self,
        path: str,
        *,
        title: str,
        section: Section = "developer",
        order: int = 50,
        methods: Iterable[str] = ("GET",),
        nav: bool = True,
    ) -> Callable[[Endpoint], Endpoint]:
        if not path.startswith("/"):
            raise ValueError(f"The page path '{path}' must start with '/'.")
        if (section == "admin") != path.startswith("/admin/"):
            raise ValueError(
                f"The page path '{path}' must be under /admin/ exactly when it is an admin page."
            )

        def register(endpoint: Endpoint) -> Endpoint:
            page = Page(path, title, section, order, endpoint, tuple(methods), nav and section != "public")
            self.entries.append(page)
            return endpoint

        return register


def navigation(pages: Iterable[Page], *, is_admin: bool, current: str) -> list[NavEntry]:
    """The navigation a user sees: developer pages, then admin pages for administrators only."""
    shown = [
        page
        for page in pages
        if page.nav and "GET" in page.methods and (page.section == "developer" or is_admin)
    ]
    shown.sort(key=lambda page: (page.section != "developer", page.order, page.title))
    return [NavEntry(page.title, page.url, page.section, page.url == current) for page in shown]
