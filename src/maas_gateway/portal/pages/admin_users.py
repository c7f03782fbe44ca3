"""The admin landing: every user, searchable by name or display name (read-only here)."""

from __future__ import annotations

from starlette.responses import Response

from maas_gateway.auth.key_repository import fold
from maas_gateway.portal.context import PageContext
from maas_gateway.portal.navigation import Pages

__all__ = ["pages"]

pages = Pages()

_SHOWN = 500  # users listed at most; a search narrows them


@pages.page("/admin/", title="Users", section="admin", order=10)
async def users(context: PageContext) -> Response:
    query = context.request.query_params.get("q", "").strip()[:200]
    repository = context.services.keys.repository
    found, total = await repository.list_users(offset=0, limit=_SHOWN if not query else 10_000)
    if query:
        wanted = fold(query)
        found = [u for u in found if wanted in fold(u.user) or wanted in fold(u.display_name or "")][:_SHOWN]
    admins = set(await context.services.accounts.store.list_admins())
    return context.render(
        "admin_users.html", title="Users", users=found, total=total, query=query, admins=admins
    )
