"""From usage reports to what the usage pages show: periods, buckets, chart series and CSV streams.

The pages read the ledger's hourly rollups through ``UsageReports`` (never raw records), so a page costs
a few grouped queries over at most a month of hours whatever the traffic.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields

from maas_gateway.metering.reports import Dimension, ReportRange, UsageGroup, UsageReports, UsageTotals
from maas_gateway.metering.usage_csv import usage_csv_lines

__all__ = [
    "PERIODS",
    "Period",
    "attachment",
    "bucket_labels",
    "by_bucket",
    "csv_stream",
    "day_label",
    "hour_label",
    "summed",
    "total",
]

HOUR = 3600
DAY = 86400


@dataclass(frozen=True, slots=True)
class Period:
    name: str  # the query parameter: "24h", "7d", "30d"
    title: str
    seconds: int
    bucket: Dimension  # "hour" for a day, "day" beyond

    def range(self, now: float) -> ReportRange:
        return ReportRange.last(self.seconds, now)


PERIODS = {
    period.name: period
    for period in (
        Period("24h", "Last 24 hours", DAY, "hour"),
        Period("7d", "Last 7 days", 7 * DAY, "day"),
        Period("30d", "Last 30 days", 30 * DAY, "day"),
    )
}


def hour_label(start: int) -> str:
    return datetime.datetime.fromtimestamp(start, tz=datetime.UTC).strftime("%H:00")


def day_label(start: int) -> str:
    return datetime.datetime.fromtimestamp(start, tz=datetime.UTC).strftime("%b %d")


def bucket_labels(period: ReportRange, bucket: Dimension) -> list[tuple[int, str]]:
    """Every bucket of ``period`` (empty ones too, so the bars keep their places): start and label."""
    if bucket == "hour":
        return [(hour * HOUR, hour_label(hour * HOUR)) for hour in range(period.first_hour, period.last_hour)]
    first = period.since - period.since % DAY
    return [(start, day_label(start)) for start in range(first, period.until, DAY)]


def by_bucket(
    groups: Sequence[UsageGroup],
    buckets: Sequence[tuple[int, str]],
    bucket: Dimension,
    series: str,
    measure: Callable[[UsageTotals], float],
) -> list[tuple[str, Mapping[str, float]]]:
    """Each bucket's values per ``series`` (a dimension of ``groups``), as ``stacked_chart`` takes them."""
    values: dict[int, dict[str, float]] = {start: {} for start, _label in buckets}
    for group in groups:
        start = group.key.get(bucket)
        if not isinstance(start, int) or start not in values:
            continue
        name = str(group.key.get(series) or "(none)")
        values[start][name] = values[start].get(name, 0.0) + measure(group.totals)
    return [(label, values[start]) for start, label in buckets]


def summed(groups: Sequence[UsageGroup], by: Dimension | None = None) -> list[UsageGroup]:
    """``groups`` added up per value of ``by`` (one group of everything when None), in Python: a page
    that already has the finer groups needs no second query for the coarser ones."""
    sums: dict[str | int | None, list[float]] = {}
    for group in groups:
        value = group.key.get(by) if by is not None else None
        into = sums.setdefault(value, [0.0] * len(_FIELDS))
        for position, name in enumerate(_FIELDS):
            into[position] += getattr(group.totals, name)
    ordered = sorted(sums.items(), key=lambda item: (item[0] is None, str(item[0])))
    return [UsageGroup({by: value} if by else {}, UsageTotals.of(values)) for value, values in ordered]


def total(groups: Sequence[UsageGroup]) -> UsageTotals:
    found = summed(groups)
    return found[0].totals if found else UsageTotals()


_FIELDS = tuple(field.name for field in fields(UsageTotals))


async def csv_stream(
    reports: UsageReports, period: ReportRange, group_by: Sequence[Dimension], *, user: str | None = None
) -> AsyncIterator[str]:
    """The whole selection as CSV lines. Groups by user and more (the only selections that run into the
    hundreds of thousands) are read one user at a time, so the export streams with flat memory and
    linear time (offset paging would re-read every earlier group for each batch); the rows then come
    user by user. Any other selection is at most tiers x models x days groups, read in one query."""
    lines = usage_csv_lines((), group_by)
    yield next(lines)
    if user is None and "user" in group_by and len(group_by) > 1:
        for each in await reports.breakdown(period, ("user",)):
            name = each.key["user"]
            groups = await reports.breakdown(period, group_by, user=str(name))
            for line in _rows(groups, group_by):
                yield line
        return
    for line in _rows(await reports.breakdown(period, group_by, user=user), group_by):
        yield line


def _rows(groups: Sequence[UsageGroup], group_by: Sequence[Dimension]) -> Iterator[str]:
    body = usage_csv_lines(groups, group_by)
    next(body)  # the header, sent once at the start
    return body


def attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}
