"""The admin usage page's selection, read from its query string: dimensions, a date range, a page.

A page is its number, and from the second on the key of the group before it (``after``, a JSON list):
the "Next page" link carries both, so the next page is read from that key (keyset paging, as cheap at
page 3,000 as at page 2); a page number alone (a typed address, "Previous page") is read by offset.

Bad input is a ``SelectionError`` whose sentence the page shows above its form (status 400), never a
500: a date that is not YYYY-MM-DD, a range that ends before it starts or spans more than a year, an
unknown dimension, a page number that is not a small positive integer, a page key that is not one.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from maas_gateway.metering.reports import Dimension, ReportRange

__all__ = [
    "GROUPS",
    "MAX_DAYS",
    "PAGE_SIZE",
    "Selection",
    "SelectionError",
    "default_selection",
    "read_selection",
]

GROUPS: tuple[Dimension, ...] = ("user", "tier", "model", "day")
MAX_DAYS = 366
PAGE_SIZE = 100
DEFAULT_DAYS = 30
_MAX_PAGE = 100_000
DAY = 86400


class SelectionError(ValueError):
    """A selection the page cannot show; the message is a whole sentence for the person who made it."""


@dataclass(frozen=True, slots=True)
class Selection:
    group_by: tuple[Dimension, ...]
    start: datetime.date  # the first day, included (UTC)
    end: datetime.date  # the last day, included (UTC)
    page: int  # from 1
    after: tuple[str | int | None, ...] | None = None  # the key of the group before the page, if known

    @property
    def range(self) -> ReportRange:
        since = datetime.datetime.combine(self.start, datetime.time(), tzinfo=datetime.UTC).timestamp()
        return ReportRange.between(since, since + ((self.end - self.start).days + 1) * DAY)

    def query(
        self, page: int | None = None, after: Sequence[str | int | None] | None = None
    ) -> list[tuple[str, str]]:
        """The selection as query parameters (for the pager's and the CSV's links)."""
        pairs: list[tuple[str, str]] = [("group", name) for name in self.group_by]
        pairs += [("from", self.start.isoformat()), ("to", self.end.isoformat())]
        if page is not None:
            pairs.append(("page", str(page)))
        if after is not None:
            pairs.append(("after", json.dumps(list(after), ensure_ascii=False, separators=(",", ":"))))
        return pairs


def default_selection(today: datetime.date) -> Selection:
    return Selection(("user",), today - datetime.timedelta(days=DEFAULT_DAYS - 1), today, 1)


def read_selection(groups: Sequence[str], values: Mapping[str, str], today: datetime.date) -> Selection:
    """The selection in ``groups`` (each ``group`` parameter) and ``values`` (``from``, ``to``, ``page``);
    what is missing takes the default: by user, the last 30 days up to ``today``, the first page."""
    default = default_selection(today)
    for name in groups:
        if name not in GROUPS:
            raise SelectionError(
                f"Usage cannot be grouped by '{name[:40]}'; choose user, tier, model or day."
            )
    group_by = tuple(name for name in GROUPS if name in groups) or default.group_by
    start = _date(values.get("from"), "start", default.start)
    end = _date(values.get("to"), "end", default.end)
    if end < start:
        raise SelectionError("The end date must not be before the start date.")
    if (end - start).days + 1 > MAX_DAYS:
        raise SelectionError(f"A date range may span at most {MAX_DAYS} days; choose a shorter one.")
    raw_page = (values.get("page") or "1").strip()
    if not raw_page.isdigit() or not 1 <= int(raw_page[:7]) <= _MAX_PAGE:
        raise SelectionError("The page must be a whole number from 1.")
    return Selection(group_by, start, end, int(raw_page), _after(values.get("after"), group_by))


def _after(raw: str | None, group_by: Sequence[Dimension]) -> tuple[str | int | None, ...] | None:
    """The key a "Next page" link carries: per dimension a day's Unix seconds, a model's name or null
    (no model), else a name."""
    if raw is None or not raw.strip():
        return None
    try:
        key = json.loads(raw[:2000])
    except ValueError:
        key = None
    if not isinstance(key, list) or len(key) != len(group_by) or not all(map(_fits, group_by, key)):
        raise SelectionError("This page's link is not valid; start again from the first page.")
    return tuple(key)


def _fits(dimension: Dimension, value: object) -> bool:
    if dimension == "day":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str) or (dimension == "model" and value is None)


def _date(raw: str | None, which: str, default: datetime.date) -> datetime.date:
    if raw is None or not raw.strip():
        return default
    try:
        found = datetime.date.fromisoformat(raw.strip()[:20])
    except ValueError:
        raise SelectionError(f"The {which} date must be a date written as YYYY-MM-DD.") from None
    if not 1970 <= found.year <= 9000:
        raise SelectionError(f"The {which} date must be between the years 1970 and 9000.")
    return found
