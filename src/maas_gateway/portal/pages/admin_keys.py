"""Every user's API keys, for administrators: a search across users, and revoking one after a
confirmation page (the admin API's own path: ``AdminActions.revoke_key``, audited)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response

from maas_gateway.portal.acting import portal_actor, shown_as_page
from maas_gateway.portal.context import PageContext, PageError
from maas_gateway.portal.navigation import Pages

__all__ = ["pages"]

pages = Pages()

_PAGE_SIZE = 50
_MAX_TEXT = 200


def _page_number(value: str | None) -> int:
    try:
        number = int(value or "1")
    except ValueError:
        return 1
    return min(max(number, 1), 1_000_000)


@pages.page("/admin/keys", title="Keys", section="admin", order=40)
async def keys(context: PageContext) -> Response:
    params = context.request.query_params
    search = params.get("q", "").strip()[:_MAX_TEXT]
    owner = params.get("user", "").strip()[:_MAX_TEXT]
    inactive = params.get("inactive") == "1"
    page = _page_number(params.get("page"))
    found = await context.services.keys.list(
        owner=owner or None,
        search=search or None,
        include_inactive=inactive,
        page=page,
        page_size=_PAGE_SIZE,
    )
    filters = {"q": search, "user": owner, "inactive": "1" if inactive else ""}
    kept = {name: value for name, value in filters.items() if value}
    more = page * _PAGE_SIZE < found.total
    return context.render(
        "admin_keys.html",
        title="Keys",
        keys=found.keys,
        total=found.total,
        search=search,
        owner=owner,
        inactive=inactive,
        now=context.services.clock(),
        previous_url=_url(kept, page - 1) if page > 1 else None,
        next_url=_url(kept, page + 1) if more else None,
        done=params.get("done", "")[:_MAX_TEXT],
    )


def _url(filters: dict[str, str], page: int) -> str:
    return "/portal/admin/keys?" + urlencode({**filters, "page": str(page)})


def _key_id(value: object) -> str:
    key_id = str(value or "").strip()
    if not key_id or len(key_id) > _MAX_TEXT:
        raise PageError(404, "Not found", "There is no such key.")
    return key_id


@pages.page("/admin/keys/revoke", title="Revoke a key", section="admin", nav=False)
async def confirm_revoke(context: PageContext) -> Response:
    key_id = _key_id(context.request.query_params.get("key"))
    with shown_as_page():
        key = await context.services.keys.owned(key_id, None)
    return context.render(
        "admin_key_revoke.html", title="Revoke a key", key=key, now=context.services.clock()
    )


@pages.page("/admin/keys/revoke", title="Revoke a key", section="admin", methods=("POST",), nav=False)
async def revoke(context: PageContext) -> Response:
    form = await context.form()
    key_id = _key_id(form.get("key"))
    with shown_as_page():
        await context.services.actions.revoke_key(portal_actor(context), key_id)
    return context.redirect("/portal/admin/keys?" + urlencode({"done": key_id, "inactive": "1"}))
