"""Usage for administrators: grouped by user, tier, model and/or day over a date range, a hundred groups
to a page, and the whole selection as a streamed CSV."""

from __future__ import annotations

import datetime
from urllib.parse import urlencode

from starlette.responses import Response, StreamingResponse

from maas_gateway.portal.context import PageContext, PageError
from maas_gateway.portal.navigation import Pages
from maas_gateway.portal.usage_selection import (
    GROUPS,
    MAX_DAYS,
    PAGE_SIZE,
    Selection,
    SelectionError,
    default_selection,
    read_selection,
)
from maas_gateway.portal.usage_views import attachment, csv_stream

__all__ = ["pages"]

pages = Pages()


def _today(context: PageContext) -> datetime.date:
    return datetime.datetime.fromtimestamp(context.services.clock(), tz=datetime.UTC).date()


def _selection(context: PageContext) -> Selection:
    params = context.request.query_params
    values = {name: params.get(name, "") for name in ("from", "to", "page", "after")}
    return read_selection(params.getlist("group"), values, _today(context))


@pages.page("/admin/usage", title="Usage", section="admin", order=30)
async def admin_usage(context: PageContext) -> Response:
    try:
        selection = _selection(context)
    except SelectionError as error:
        # The form shows what was typed (escaped like any text), so the person can correct it.
        params = context.request.query_params
        typed = {"from": params.get("from", "")[:40], "to": params.get("to", "")[:40]}
        return _render(context, default_selection(_today(context)), error=str(error), status=400, typed=typed)
    return await _render_groups(context, selection)


async def _render_groups(context: PageContext, selection: Selection) -> Response:
    services = context.services
    await services.ledger.flush()
    span = selection.range
    offset = (selection.page - 1) * PAGE_SIZE
    groups = await services.usage_reports.breakdown(
        span,
        selection.group_by,
        limit=PAGE_SIZE + 1,
        # From the key the "Next page" link carries: a deep page costs what the first does.
        offset=offset if selection.after is None else 0,
        after=selection.after,
    )
    totals = await services.usage_reports.totals(span)
    shown = groups[:PAGE_SIZE]
    following = None
    if len(groups) > PAGE_SIZE:
        following = urlencode(selection.query(selection.page + 1, after=list(shown[-1].key.values())))
    return _render(
        context,
        selection,
        groups=shown,
        totals=totals,
        previous=urlencode(selection.query(selection.page - 1)) if selection.page > 1 else None,
        following=following,
        first=offset + 1,
    )


def _render(
    context: PageContext,
    selection: Selection,
    *,
    error: str | None = None,
    status: int = 200,
    typed: dict[str, str] | None = None,
    **values: object,
) -> Response:
    shown = typed or {"from": selection.start.isoformat(), "to": selection.end.isoformat()}
    return context.render(
        "admin_usage.html",
        status=status,
        title="Usage",
        error=error,
        selection=selection,
        choices=GROUPS,
        max_days=MAX_DAYS,
        csv=urlencode(selection.query()),
        shown=shown,
        **values,
    )


@pages.page("/admin/usage.csv", title="Usage CSV", section="admin", nav=False)
async def admin_usage_download(context: PageContext) -> Response:
    try:
        selection = _selection(context)
    except SelectionError as error:
        raise PageError(400, "Bad request", str(error)) from None
    await context.services.ledger.flush()
    lines = csv_stream(context.services.usage_reports, selection.range, selection.group_by)
    name = f"usage-{selection.start.isoformat()}-{selection.end.isoformat()}.csv"
    return StreamingResponse(lines, media_type="text/csv; charset=utf-8", headers=attachment(name))
