"""The administrators' overview: the last 24 hours of every user's calls (requests, tokens, cost, errors,
429s), the top users and models, and charts per hour."""

from __future__ import annotations

from starlette.responses import Response

from maas_gateway.portal.charts import stacked_chart
from maas_gateway.portal.context import PageContext
from maas_gateway.portal.navigation import Pages
from maas_gateway.portal.usage_views import PERIODS, bucket_labels, by_bucket, hour_label, summed, total

__all__ = ["pages"]

pages = Pages()

_TOP = 10


@pages.page("/admin/", title="Overview", section="admin", order=10)
async def admin_overview(context: PageContext) -> Response:
    services = context.services
    reports = services.usage_reports
    await services.ledger.flush()
    day = PERIODS["24h"].range(services.clock())
    # Two queries: the totals, the hours and the top models are sums of the groups by hour and model.
    by_model = await reports.breakdown(day, ("hour", "model"))
    top_users = await reports.top(day, "user", by="requests", limit=_TOP)
    totals = total(by_model)
    hourly = summed(by_model, "hour")
    models = summed(by_model, "model")
    top_models = sorted(models, key=lambda g: (-g.totals.requests, str(g.key["model"])))[:_TOP]
    buckets = bucket_labels(day, "hour")
    outcomes = [
        (
            hour_label(int(group.key["hour"] or 0)),
            {
                "answered": float(group.totals.ok),
                "errors": float(group.totals.errors),
                "refused (429)": float(group.totals.rate_limited),
            },
        )
        for group in hourly
    ]
    present = {label for label, _values in outcomes}
    series = dict(outcomes)
    charts = [
        stacked_chart(
            "Requests per hour by outcome",
            [(label, series[label] if label in present else {}) for _start, label in buckets],
            unit="requests",
        ),
        stacked_chart(
            "Tokens per hour by model",
            by_bucket(by_model, buckets, "hour", "model", lambda t: t.total_tokens),
            unit="tokens",
        ),
    ]
    return context.render(
        "admin_overview.html",
        title="Overview",
        totals=totals,
        top_users=top_users,
        top_models=top_models,
        charts=charts,
    )
