"""Budgets and alerts, for administrators: every team's and user's budget with what is used now, and the
alert outbox's recent alerts with their delivery (pending, delivered, failed; attempts; last error).

Budgets are read as the developer page reads them (``portal/budgets.py``: the limiter's own counters,
peeked), so an administrator and the budget's people see the same numbers.
"""

from __future__ import annotations

from starlette.responses import Response

from maas_gateway.portal.budgets import Budget, Owned, budgets_of, fired_alerts, owned_by_team, owned_by_user
from maas_gateway.portal.context import PageContext
from maas_gateway.portal.navigation import Pages

__all__ = ["pages"]

pages = Pages()

_USERS_READ = 200  # users whose own budgets are listed; the developer page shows anyone's in full
_RECENT_ALERTS = 100


@pages.page("/admin/budgets", title="Budgets & alerts", section="admin", order=35)
async def budgets(context: PageContext) -> Response:
    services = context.services
    now = services.clock()
    config = services.config()
    limiter = services.limiter()
    team_budgets: list[Budget] = []
    user_budgets: list[Budget] = []
    users, total_users = await services.keys.repository.list_users(offset=0, limit=_USERS_READ)
    if limiter is not None:
        models = [model.name for model in config.models]
        stored_teams = {team.name for team in await services.actions.teams.store.all()}
        team_owned: list[Owned] = []
        for team in sorted(stored_teams | set(config.teams)):
            team_owned += owned_by_team(limiter, team)
        team_budgets = await budgets_of(limiter, team_owned, models, now)
        user_owned: list[Owned] = []
        for stored in users:
            user_owned += owned_by_user(limiter, stored.user, services.tier_of(stored, now), [])
        user_budgets = await budgets_of(limiter, user_owned, models, now)
    team_budgets, _ = await fired_alerts(services.alerts, team_budgets, now)
    user_budgets, _ = await fired_alerts(services.alerts, user_budgets, now)
    alerts = [] if services.alerts is None else await services.alerts.listed(limit=_RECENT_ALERTS)
    return context.render(
        "admin_budgets.html",
        title="Budgets & alerts",
        team_budgets=team_budgets,
        user_budgets=user_budgets,
        users_listed=len(users),
        total_users=total_users,
        alerts=alerts,
        limits_on=limiter is not None,
        alerts_on=services.alerts is not None,
    )
