"""Users, for administrators: the list with a search, one user's page, their tier, disabling them.

Changes go through ``AdminActions`` like the admin API's (audited, with the portal administrator as
actor); disabling a user stops their keys, tokens and portal sessions on every replica within about a
second (the users row is the one authority, and the change watcher tells the other replicas).
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response

from maas_gateway.auth.key_repository import fold
from maas_gateway.portal.acting import portal_actor, shown_as_page
from maas_gateway.portal.context import PageContext, PageError
from maas_gateway.portal.navigation import Pages

__all__ = ["pages"]

pages = Pages()

_SHOWN = 500  # users listed at most; a search narrows them
_MAX_NAME = 300


@pages.page("/admin/users", title="Users", section="admin", order=20)
async def users(context: PageContext) -> Response:
    return await _listing(context)


async def _listing(context: PageContext) -> Response:
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


def _user_name(value: object) -> str:
    name = str(value or "").strip()
    if not name or len(name) > _MAX_NAME:
        raise PageError(404, "Not found", "There is no such user.")
    return name


@pages.page("/admin/user", title="User", section="admin", nav=False)
async def user(context: PageContext) -> Response:
    services = context.services
    name = _user_name(context.request.query_params.get("user"))
    with shown_as_page():
        stored = await services.actions.find_user(name)
    now = services.clock()
    keys = await services.keys.list(owner=name, page_size=1)
    account = await services.accounts.store.get(name)
    return context.render(
        "admin_user.html",
        title=f"User {name}",
        row=stored,
        tier_now=services.tier_of(stored, now),
        tiers=list(services.config().tiers),
        active_keys=keys.total,
        has_account=account is not None,
        is_admin=account is not None and account.is_admin,
        done=context.request.query_params.get("done", ""),
    )


@pages.page("/admin/user/tier", title="Change a user's tier", section="admin", methods=("POST",), nav=False)
async def change_tier(context: PageContext) -> Response:
    form = await context.form()
    name = _user_name(form.get("user"))
    tier = str(form.get("tier") or "")
    with shown_as_page():
        await context.services.actions.update_user(portal_actor(context), name, tier=tier)
    return context.redirect(_back(context, name, "tier"))


@pages.page(
    "/admin/user/state", title="Disable or enable a user", section="admin", methods=("POST",), nav=False
)
async def change_state(context: PageContext) -> Response:
    form = await context.form()
    name = _user_name(form.get("user"))
    disabled = {"disable": True, "enable": False}.get(str(form.get("action") or ""))
    if disabled is None:
        raise PageError(400, "Not accepted", "The form asks neither to disable nor to enable the user.")
    if disabled and name == context.me.user:
        raise PageError(400, "Not accepted", "You cannot disable your own account from the portal.")
    with shown_as_page():
        await context.services.actions.update_user(portal_actor(context), name, disabled=disabled)
    return context.redirect(_back(context, name, "disabled" if disabled else "enabled"))


def _back(context: PageContext, name: str, done: str) -> str:
    return "/portal/admin/user?" + urlencode({"user": name, "done": done})
