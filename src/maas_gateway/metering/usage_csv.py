"""Usage report rows as CSV, for the portal's and the admin API's downloads."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import fields

from maas_gateway.metering.reports import Dimension, UsageGroup, UsageTotals

__all__ = ["CSV_MEASURES", "defuse_formula", "usage_csv", "usage_csv_lines"]

CSV_MEASURES = (*(field.name for field in fields(UsageTotals)), "errors", "mean_latency_ms")
# A cell a spreadsheet would run as a formula; a user name comes from an identity provider.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def usage_csv_lines(groups: Iterable[UsageGroup], group_by: Sequence[Dimension]) -> Iterator[str]:
    """The header, then one line per group (``group_by``'s columns, then ``CSV_MEASURES``); a generator,
    so a large export can be streamed."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def line(values: Sequence[object]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line([*group_by, *CSV_MEASURES])
    for group in groups:
        totals = group.totals
        keys = [defuse_formula(group.key[name]) for name in group_by]
        measures = [getattr(totals, name) for name in CSV_MEASURES]
        yield line([*keys, *(round(v, 10) if isinstance(v, float) else v for v in measures)])


def usage_csv(groups: Iterable[UsageGroup], group_by: Sequence[Dimension]) -> str:
    return "".join(usage_csv_lines(groups, group_by))


def defuse_formula(value: str | int | None) -> str | int:
    """A cell as a spreadsheet shows it, never runs it: text starting like a formula is quoted; ``None``
    is an empty cell. Every CSV the gateway writes (here, admin/usage.py, admin/focus.py) uses it."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value  # shown as text by spreadsheets, and still readable
    return value
