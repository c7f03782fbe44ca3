"""Reading the usage ledger: parameters, aggregation, and JSON or CSV answers."""

from __future__ import annotations

import csv
import io
import math
import time
from datetime import UTC, datetime

from maas_gateway.errors import InvalidRequestError
from maas_gateway.metering import GROUPS, UsageQuery, UsageRow, defuse_formula
from maas_gateway.metering.store import Group

__all__ = ["month_bounds", "parse_groups", "parse_time", "rows_to_csv", "usage_query"]

_DEFAULT_PERIOD = 30 * 86400
# The last second of the year 9999: the latest moment a date can name, and far inside every column's
# integer range (an hour or a day of a rollup is stored as whole seconds).
_LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()


def parse_time(value: str | None, name: str, default: float) -> float:
    """Unix seconds, or an ISO 8601 date or time (UTC unless it says otherwise), from the epoch to the
    end of the year 9999: NaN, infinity or 1e20 seconds is a 400, not a failure of the database."""
    if value is None or value == "":
        return default
    try:
        moment = float(value)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidRequestError(
                f"`{name}` must be Unix seconds or an ISO 8601 date such as 2026-11-01.", param=name
            ) from None
        moment = (parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)).timestamp()
    if not (math.isfinite(moment) and 0 <= moment <= _LATEST):
        raise InvalidRequestError(
            f"`{name}` must be a moment from 1970 to 9999: Unix seconds from 0 to {int(_LATEST)}, or an "
            "ISO 8601 date such as 2026-11-01.",
            param=name,
        )
    return moment


def parse_groups(value: str | None) -> tuple[Group, ...]:
    if value is None or value == "":
        return ("user", "model")
    groups = tuple(part.strip() for part in value.split(",") if part.strip())
    for group in groups:
        if group not in GROUPS:
            raise InvalidRequestError(
                f"`group_by` cannot include '{group}'; choose from {', '.join(GROUPS)}.", param="group_by"
            )
    return groups  # type: ignore[return-value]  # each member was checked against GROUPS just above


def month_bounds(month: str) -> tuple[float, float]:
    """``2026-11`` as Unix seconds: its first midnight (UTC) and the next month's."""
    try:
        start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    except ValueError:
        raise InvalidRequestError("`month` must be a month such as 2026-11.", param="month") from None
    following = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start.timestamp(), following.timestamp()


def usage_query(
    since: str | None,
    until: str | None,
    group_by: str | None,
    user: str | None,
    month: str | None = None,
) -> UsageQuery:
    if month:
        if since or until:
            raise InvalidRequestError("Give either `month` or `since` and `until`, not both.", param="month")
        start, end = month_bounds(month)
        return UsageQuery(since=start, until=end, group_by=parse_groups(group_by), user=user)
    end = parse_time(until, "until", time.time() + 1)
    start = parse_time(since, "since", end - _DEFAULT_PERIOD)
    if start >= end:
        raise InvalidRequestError("`since` must be earlier than `until`.", param="since")
    return UsageQuery(since=start, until=end, group_by=parse_groups(group_by), user=user)


def rows_to_csv(rows: list[UsageRow], groups: tuple[Group, ...]) -> str:
    buffer = io.StringIO()
    columns = [
        *groups,
        "requests",
        "rate_limited",
        "failed",
        "broken",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "charged_tokens",
        "cost",
    ]
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        # A user's name may start like a formula; quoted, a spreadsheet shows it instead of running it.
        defused = {name: defuse_formula(row.groups.get(name)) for name in groups}
        writer.writerow(row.as_dict() | defused)
    return buffer.getvalue()
