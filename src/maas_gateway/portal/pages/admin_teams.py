"""Teams, for administrators: every team with its members; creating a team, adding and removing members.

Changes go through ``AdminActions.teams`` like the admin API's and the CLI's (checked and audited once,
with the portal administrator as actor). A refused change (a bad name, a team that exists, a member who
is not one) shows the list again with the refusal's sentence, never a traceback.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response

from maas_gateway.errors import GatewayError
from maas_gateway.portal.acting import portal_actor
from maas_gateway.portal.context import PageContext
from maas_gateway.portal.navigation import Pages

__all__ = ["pages"]

pages = Pages()

_MAX_TEXT = 300
_DONE = {
    "created": "The team {team} was created.",
    "added": "{user} is now a member of {team}.",
    "removed": "{user} is no longer a member of {team}; their keys for it keep working until revoked.",
}


@pages.page("/admin/teams", title="Teams", section="admin", order=25)
async def teams(context: PageContext) -> Response:
    params = context.request.query_params
    done = _DONE.get(params.get("done", ""), "")
    notice = done.format(team=params.get("team", "")[:_MAX_TEXT], user=params.get("user", "")[:_MAX_TEXT])
    return await _listing(context, notice=notice)


async def _listing(context: PageContext, *, notice: str = "", error: str = "", status: int = 200) -> Response:
    store = context.services.actions.teams.store
    listed = [(team, await store.members(team.name)) for team in await store.all()]
    limited = set(context.services.config().teams)
    return context.render(
        "admin_teams.html",
        title="Teams",
        teams=listed,
        limited=limited,
        notice=notice,
        error=error,
        status=status,
    )


def _text(value: object) -> str:
    return str(value or "").strip()[:_MAX_TEXT]


@pages.page("/admin/teams/create", title="Create a team", section="admin", methods=("POST",), nav=False)
async def create(context: PageContext) -> Response:
    form = await context.form()
    name = _text(form.get("name"))
    display_name = _text(form.get("display_name")) or None
    try:
        await context.services.actions.teams.create(portal_actor(context), name, display_name)
    except GatewayError as exc:
        return await _listing(context, error=exc.message, status=exc.status_code)
    return context.redirect(_back("created", name))


@pages.page(
    "/admin/teams/members", title="Add or remove a member", section="admin", methods=("POST",), nav=False
)
async def members(context: PageContext) -> Response:
    form = await context.form()
    team = _text(form.get("team"))
    user = _text(form.get("user"))
    action = _text(form.get("action"))
    actions = context.services.actions.teams
    if not user:
        return await _listing(context, error="Name the user to add or remove.", status=400)
    try:
        if action == "add":
            await actions.add_member(portal_actor(context), team, user)
        elif action == "remove":
            await actions.remove_member(portal_actor(context), team, user)
        else:
            return await _listing(context, error="The form asks neither to add nor to remove.", status=400)
    except GatewayError as exc:
        return await _listing(context, error=exc.message, status=exc.status_code)
    return context.redirect(_back("added" if action == "add" else "removed", team, user))


def _back(done: str, team: str, user: str = "") -> str:
    values = {"done": done, "team": team} | ({"user": user} if user else {})
    return "/portal/admin/teams?" + urlencode(values)
