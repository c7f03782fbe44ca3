"""The developer's usage: requests, tokens and cost per hour or day and per model, over 24 h, 7 d or 30 d.

Only the signed-in user's own usage: no parameter names a user, so a ``user=`` in the address is
ignored. The ledger is flushed first, so calls answered a moment ago are counted.
"""

from __future__ import annotations

from starlette.responses import Response, StreamingResponse

from maas_gateway.portal.charts import stacked_chart
from maas_gateway.portal.context import PageContext
from maas_gateway.portal.navigation import Pages
from maas_gateway.portal.usage_views import (
    PERIODS,
    Period,
    attachment,
    bucket_labels,
    by_bucket,
    csv_stream,
    summed,
    total,
)

__all__ = ["pages"]

pages = Pages()


def _period(context: PageContext) -> Period:
    # An unknown period is not an error worth a page: the default is shown, and the tabs say which.
    return PERIODS.get(context.request.query_params.get("period", ""), PERIODS["7d"])


@pages.page("/usage", title="Usage", order=30)
async def usage(context: PageContext) -> Response:
    me = context.me
    services = context.services
    period = _period(context)
    await services.ledger.flush()
    span = period.range(services.clock())
    reports = services.usage_reports
    # One query: the totals and the per-model rows are sums of the per-bucket-and-model groups.
    groups = await reports.breakdown(span, (period.bucket, "model"), user=me.user)
    totals = total(groups)
    per_model = summed(groups, "model")
    buckets = bucket_labels(span, period.bucket)
    unit = "hour" if period.bucket == "hour" else "day"
    charts = [
        stacked_chart(
            f"Requests per {unit} and model",
            by_bucket(groups, buckets, period.bucket, "model", lambda t: t.requests),
            unit="requests",
        ),
        stacked_chart(
            f"Tokens (prompt and completion) per {unit} and model",
            by_bucket(
                groups, buckets, period.bucket, "model", lambda t: t.prompt_tokens + t.completion_tokens
            ),
            unit="tokens",
        ),
        stacked_chart(
            f"Cost ({services.config().pricing.currency}) per {unit} and model",
            by_bucket(groups, buckets, period.bucket, "model", lambda t: t.cost),
            unit="in cost",
            currency=services.config().pricing.currency,
        ),
    ]
    rows = sorted(groups, key=lambda g: (-int(g.key[period.bucket] or 0), str(g.key["model"] or "")))
    return context.render(
        "usage.html",
        title="Usage",
        period=period,
        periods=list(PERIODS.values()),
        totals=totals,
        charts=charts,
        rows=rows,
        per_model=per_model,
    )


@pages.page("/usage.csv", title="Usage CSV", nav=False)
async def usage_download(context: PageContext) -> Response:
    me = context.me
    period = _period(context)
    await context.services.ledger.flush()
    span = period.range(context.services.clock())
    lines = csv_stream(context.services.usage_reports, span, (period.bucket, "model"), user=me.user)
    return StreamingResponse(
        lines, media_type="text/csv; charset=utf-8", headers=attachment(f"usage-{period.name}.csv")
    )
