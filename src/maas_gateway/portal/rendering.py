"""Jinja2 templates shipped in the package, escaped by default, and the values every page gets.

Every template extends ``base.html`` (navigation, skip link, sign-out form). Templates never contain
scripts or inline event handlers: the Content-Security-Policy forbids them (``portal.js`` is the only
script). ``csrf_field()`` writes the hidden CSRF input every state-changing form must carry.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from markupsafe import Markup, escape
from starlette.responses import HTMLResponse

from maas_gateway.portal.money_words import amount_text
from maas_gateway.portal.navigation import Page, navigation

if TYPE_CHECKING:
    from maas_gateway.portal.context import PageContext

__all__ = ["Renderer"]


@pass_context
def _csrf_field(context: Context) -> Markup:
    token = context.get("csrf_token") or ""
    return Markup('<input type="hidden" name="csrf_token" value="{}">').format(escape(token))


@pass_context
def _money(context: Context, amount: float, places: int = 4) -> str:
    """A usage report's amount in the configured currency (``pricing.currency``), code and all."""
    return amount_text(amount, context.get("currency") or "USD", places)


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    moment = datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(seconds: float) -> str:
    seconds = max(0, math.ceil(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


class Renderer:
    def __init__(self, pages: Sequence[Page]) -> None:
        self.pages = tuple(pages)
        self.environment = Environment(
            loader=PackageLoader("maas_gateway.portal", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.environment.globals["csrf_field"] = _csrf_field
        self.environment.filters["when"] = _when
        self.environment.filters["duration"] = _duration
        self.environment.filters["money"] = _money

    def page(self, context: PageContext, template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
        user = context.user
        current = context.request.url.path
        nav = [] if user is None else navigation(self.pages, is_admin=user.is_admin, current=current)
        html = self.environment.get_template(template).render(
            user=user,
            nav=nav,
            csrf_token=context.csrf_token,
            current=current,
            currency=context.services.config().pricing.currency,
            **values,
        )
        return HTMLResponse(html, status_code=status)

    def error(self, status: int, title: str, message: str, headers: dict[str, str]) -> HTMLResponse:
        """An error page without the navigation (the user may not be known when it is rendered)."""
        html = self.environment.get_template("error.html").render(
            user=None, nav=[], csrf_token="", status=status, title=title, message=message
        )
        return HTMLResponse(html, status_code=status, headers=headers)
