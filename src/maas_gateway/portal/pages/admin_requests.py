"""Plan change requests, for administrators: the pending ones, approved or denied (with an optional
reason) through ``AdminActions``; an approval moves the user to the new tier at once, on every replica.

Deciding is a compare-and-set in the store, so when two administrators decide the same request, the
second gets a page saying who decided it first, and nothing changes.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.responses import Response

from maas_gateway.errors import ConflictError
from maas_gateway.portal.acting import portal_actor, shown_as_page
from maas_gateway.portal.context import PageContext, PageError
from maas_gateway.portal.navigation import Pages

__all__ = ["pages"]

pages = Pages()

_SHOWN = 200
_RECENT = 20
_REASON_LIMIT = 500


@pages.page("/admin/requests", title="Requests", section="admin", order=50)
async def requests(context: PageContext) -> Response:
    plans = context.services.actions.plans
    pending, total = await plans.listing(user=None, status="pending", page=1, page_size=_SHOWN)
    recent, _ = await plans.listing(user=None, status=None, page=1, page_size=_RECENT + len(pending))
    decided = [request for request in recent if request.status != "pending"][:_RECENT]
    params = context.request.query_params
    return context.render(
        "admin_requests.html",
        title="Requests",
        pending=pending,
        total=total,
        decided=decided,
        done=params.get("done", "")[:20],
        done_id=params.get("id", "")[:100],
    )


def _request_id(value: object) -> str:
    request_id = str(value or "").strip()
    if not request_id or len(request_id) > 100:
        raise PageError(404, "Not found", "There is no such plan request.")
    return request_id


async def _decided_already(context: PageContext, request_id: str) -> PageError:
    """The page for a request someone decided first (another administrator, or the user withdrew it)."""
    current = await context.services.actions.plans.owned(request_id, None)
    by = f" by {current.decided_by}" if current.decided_by else ""
    return PageError(
        409,
        "Already decided",
        f"This request of {current.user} for the tier {current.tier} was {current.status} already{by}, "
        "so nothing was changed.",
    )


@pages.page(
    "/admin/requests/approve", title="Approve a request", section="admin", methods=("POST",), nav=False
)
async def approve(context: PageContext) -> Response:
    form = await context.form()
    request_id = _request_id(form.get("request"))
    with shown_as_page():
        try:
            await context.services.actions.approve_plan_request(portal_actor(context), request_id)
        except ConflictError:
            raise await _decided_already(context, request_id) from None
    return context.redirect("/portal/admin/requests?" + urlencode({"done": "approved", "id": request_id}))


@pages.page("/admin/requests/deny", title="Deny a request", section="admin", methods=("POST",), nav=False)
async def deny(context: PageContext) -> Response:
    form = await context.form()
    request_id = _request_id(form.get("request"))
    reason = str(form.get("reason") or "").strip()[:_REASON_LIMIT] or None
    with shown_as_page():
        try:
            await context.services.actions.deny_plan_request(portal_actor(context), request_id, reason)
        except ConflictError:
            raise await _decided_already(context, request_id) from None
    return context.redirect("/portal/admin/requests?" + urlencode({"done": "denied", "id": request_id}))
