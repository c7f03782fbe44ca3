"""My plan: the tiers side by side, mine highlighted; asking for another (an administrator decides) and
withdrawing the request that waits. It goes through ``PlanRequestService``, as ``/v1/plan-requests``."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response

from maas_gateway.portal.acting import shown_as_page
from maas_gateway.portal.context import PageContext, PageError
from maas_gateway.portal.navigation import Pages
from maas_gateway.portal.plan_words import tier_facts

__all__ = ["pages"]

pages = Pages()

_NOTE_LIMIT = 2000
_HISTORY = 5


@dataclass(frozen=True, slots=True)
class TierCard:
    name: str
    description: str
    facts: list[str]
    models: list[str]
    mine: bool


@pages.page("/plan", title="Plan", order=60)
async def plan(context: PageContext) -> Response:
    return await _page(context)


async def _page(
    context: PageContext, *, error: str | None = None, note: str = "", status: int = 200
) -> Response:
    me = context.me
    config = context.services.config()
    cards = [
        TierCard(
            name,
            tier.description,
            tier_facts(tier),
            [model.name for model in config.models if model.tiers is None or name in model.tiers],
            name == me.tier,
        )
        for name, tier in config.tiers.items()
    ]
    plans = context.services.actions.plans
    waiting, _ = await plans.listing(user=me.user, status="pending", page=1, page_size=1)
    history, _ = await plans.listing(user=me.user, status=None, page=1, page_size=_HISTORY + 1)
    return context.render(
        "plan.html",
        status=status,
        title="Plan",
        cards=cards,
        tier=me.tier,
        pending=waiting[0] if waiting else None,
        history=[request for request in history if request.status != "pending"][:_HISTORY],
        error=error,
        note=note,
        done=context.request.query_params.get("done", "")[:20],
    )


@pages.page("/plan/request", title="Ask for another plan", methods=("POST",), nav=False)
async def request_change(context: PageContext) -> Response:
    me = context.me
    form = await context.form()
    tier = str(form.get("tier") or "")
    note = str(form.get("note") or "").strip()
    if me.tier is None:
        return await _page(context, error="Your account has no tier; ask an administrator.", status=400)
    if len(note) > _NOTE_LIMIT:
        message = f"The note may be at most {_NOTE_LIMIT} characters long."
        return await _page(context, error=message, note=note[:_NOTE_LIMIT], status=400)
    try:
        with shown_as_page():
            await context.services.actions.plans.request(
                me.user, current_tier=me.tier, tier=tier, note=note or None
            )
    except PageError as refused:
        if refused.status == 409:  # one request may wait per user
            message = "You already have a request waiting; withdraw it first to ask for something else."
        elif refused.status == 400:  # an unknown tier, or the one I am on
            message = refused.message
        else:
            raise
        return await _page(context, error=message, note=note, status=refused.status)
    return context.redirect("/portal/plan?done=requested")


@pages.page("/plan/withdraw", title="Withdraw a plan request", methods=("POST",), nav=False)
async def withdraw(context: PageContext) -> Response:
    form = await context.form()
    request_id = str(form.get("request") or "").strip()[:100]
    if not request_id:
        raise PageError(404, "Not found", "There is no such plan request.")
    with shown_as_page({409: "Already decided"}):
        await context.services.actions.plans.withdraw(context.me.user, request_id)
    return context.redirect("/portal/plan?done=withdrawn")
