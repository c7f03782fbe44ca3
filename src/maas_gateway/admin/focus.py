"""Usage as a FOCUS-style chargeback CSV (the FinOps Open Cost and Usage Specification's column names).

One row per report group: what it cost (``BilledCost``, in ``BillingCurrency``), over which period
(``ChargePeriodStart``/``End``: the group's day or hour when grouped by time, else the report's range),
for which resource (``ResourceId``: the model), with the other groups (user, team, tier, endpoint) as JSON
``Tags``. Cells a spreadsheet would run as formulas are quoted.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from maas_gateway.metering import UsageQuery, UsageRow, defuse_formula

__all__ = ["FOCUS_COLUMNS", "focus_csv"]

FOCUS_COLUMNS = (
    "BilledCost",
    "BillingCurrency",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ChargeCategory",
    "ResourceId",
    "ConsumedQuantity",
    "ConsumedUnit",
    "Tags",
)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _period(row: UsageRow, query: UsageQuery) -> tuple[float, float]:
    hour, day = row.groups.get("hour"), row.groups.get("day")
    if isinstance(hour, int):
        return hour, hour + 3600
    if isinstance(day, int):
        return day, day + 86400
    return query.since, query.until


def focus_csv(rows: list[UsageRow], query: UsageQuery, currency: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(FOCUS_COLUMNS)
    for row in rows:
        start, end = _period(row, query)
        tags = {
            name: value
            for name, value in row.groups.items()
            if name not in ("model", "day", "hour") and value
        }
        model = row.groups.get("model")
        writer.writerow(
            [
                f"{row.cost:.6f}",
                currency,
                _iso(start),
                _iso(end),
                "Usage",
                defuse_formula(str(model)) if model else "",
                row.total_tokens,
                "Tokens",
                defuse_formula(json.dumps(tags, sort_keys=True, ensure_ascii=False)) if tags else "",
            ]
        )
    return buffer.getvalue()
