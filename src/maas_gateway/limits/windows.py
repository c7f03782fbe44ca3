"""Where a limit's window starts and ends: fixed durations on the epoch, or calendar days, weeks and months.

A fixed window (``30s``, ``1h``, ``1d``) is aligned to the Unix epoch, as it always was, so counters kept
in Redis by an earlier version still count. A calendar window (``day``, ``week``, ``month``) starts at
local midnight in the configured time zone: a day at 00:00, a week on Monday at 00:00, a month on the 1st
at 00:00. Its length follows the calendar: a month has 28 to 31 days, and a day in Europe/Berlin is 23
hours long when the clocks go forward and 25 when they go back.

Every replica computes the same boundaries from the time alone, and a counter is identified by its
window's start, so the in-process and the Redis storage agree on which counter a moment belongs to.
``window_bounds`` is the pure function; ``FixedWindow`` and ``CalendarWindow`` wrap it for the hot path
(a calendar window remembers the last window it computed, so the common case costs one comparison).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal, get_args
from zoneinfo import ZoneInfo

__all__ = [
    "CALENDAR_UNITS",
    "CalendarUnit",
    "CalendarWindow",
    "FixedWindow",
    "Window",
    "calendar_bounds",
    "make_window",
    "window_bounds",
]

CalendarUnit = Literal["day", "week", "month"]
CALENDAR_UNITS: frozenset[str] = frozenset(get_args(CalendarUnit))


def window_bounds(t: float, window: float | CalendarUnit, zone: ZoneInfo) -> tuple[float, float]:
    """The start and end (Unix seconds) of the window holding ``t``: ``start <= t < end``.

    ``window`` is a fixed length in seconds (aligned to the epoch; ``zone`` plays no part) or a calendar
    unit (aligned to local midnight in ``zone``).
    """
    if isinstance(window, str):
        return calendar_bounds(t, window, zone)
    start = (t // window) * window
    return start, start + window


def calendar_bounds(t: float, unit: CalendarUnit, zone: ZoneInfo) -> tuple[float, float]:
    """The calendar ``unit`` holding ``t`` in ``zone``, as Unix seconds ``(start, end)``.

    A boundary is the instant of local midnight on the period's first day. Where midnight does not exist
    (clocks jump over it) the boundary is the first instant after the jump. The local date of ``t`` gives
    the candidate period; the two corrections keep ``start <= t < end`` even where a period's first
    instant is not at its local midnight.
    """
    first = _period_start(datetime.fromtimestamp(t, zone).date(), unit)
    start = _midnight(first, zone)
    if start > t:
        first = _period_start(first - timedelta(days=1), unit)
        start = _midnight(first, zone)
    following = _next_period(first, unit)
    end = _midnight(following, zone)
    if end <= t:
        start, end = end, _midnight(_next_period(following, unit), zone)
    return start, end


def _midnight(day: date, zone: ZoneInfo) -> float:
    # fold=0 maps a local time the clocks skip to the instant after the jump, so boundaries never go back.
    return datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()


def _period_start(day: date, unit: CalendarUnit) -> date:
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())  # Monday
    return day.replace(day=1)


def _next_period(first: date, unit: CalendarUnit) -> date:
    if unit == "day":
        return first + timedelta(days=1)
    if unit == "week":
        return first + timedelta(days=7)
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


class FixedWindow:
    """A fixed length aligned to the epoch; a window is identified by its index since the epoch."""

    __slots__ = ("calendar", "key", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.key = f"{seconds:g}"  # the counter keys of earlier versions, kept so their counts still hold
        self.calendar = False

    def bounds(self, now: float) -> tuple[float, float]:
        start = (now // self.seconds) * self.seconds
        return start, start + self.seconds

    def window_id(self, now: float) -> int:
        return int(now // self.seconds)

    def previous_id(self, now: float) -> int:
        return int(now // self.seconds) - 1

    def next_end(self, now: float) -> float:
        """The end of the window after the one holding ``now``: how long a sliding rule keeps a counter."""
        return (now // self.seconds + 2) * self.seconds


class CalendarWindow:
    """A calendar day, week or month in one time zone; a window is identified by its start (Unix seconds)."""

    __slots__ = ("_end", "_next_end", "_previous", "_start", "calendar", "key", "unit", "zone")

    def __init__(self, unit: CalendarUnit, zone: ZoneInfo) -> None:
        self.unit = unit
        self.zone = zone
        self.key = f"{unit}@{zone.key}"
        self.calendar = True
        self._start = self._end = self._next_end = 0.0
        self._previous = 0

    def bounds(self, now: float) -> tuple[float, float]:
        if not self._start <= now < self._end:
            self._move(now)
        return self._start, self._end

    def window_id(self, now: float) -> int:
        return int(self.bounds(now)[0])

    def previous_id(self, now: float) -> int:
        if not self._start <= now < self._end:
            self._move(now)
        return self._previous

    def next_end(self, now: float) -> float:
        """The end of the window after the one holding ``now``: how long a sliding rule keeps a counter."""
        if not self._start <= now < self._end:
            self._move(now)
        return self._next_end

    def _move(self, now: float) -> None:
        # Boundaries are whole seconds and a window lasts at least a day, so one second before a start
        # lies in the previous window.
        start, end = calendar_bounds(now, self.unit, self.zone)
        self._previous = int(calendar_bounds(start - 1.0, self.unit, self.zone)[0])
        self._next_end = calendar_bounds(end, self.unit, self.zone)[1]
        self._start, self._end = start, end


Window = FixedWindow | CalendarWindow


def make_window(window: float | CalendarUnit, zone: ZoneInfo) -> Window:
    if isinstance(window, str):
        return CalendarWindow(window, zone)
    return FixedWindow(window)
