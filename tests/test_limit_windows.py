"""The window function alone: calendar days, weeks and months in any time zone; epoch-aligned durations."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maas_gateway.config import LimitConfig, LimitsSettings
from maas_gateway.limits.windows import CalendarWindow, calendar_bounds, window_bounds

ZONES = sorted(available_timezones())
UNITS = ("day", "week", "month")
# 1970 to 2100: the rules zoneinfo knows, and the POSIX rule it extends them with after the last one.
instants = st.floats(min_value=86_400, max_value=4_102_444_800, allow_nan=False)
zones = st.sampled_from(ZONES).map(ZoneInfo)
units = st.sampled_from(UNITS)


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


@settings(max_examples=3000, deadline=None)
@given(instants, units, zones)
def test_every_instant_lies_in_its_window(t: float, unit: str, zone: ZoneInfo) -> None:
    """start <= t < end, and the window starts at local midnight on a 1st (month) or a Monday (week)."""
    start, end = calendar_bounds(t, unit, zone)  # type: ignore[arg-type]  # a calendar unit
    assert start <= t < end
    local = datetime.fromtimestamp(start, zone)
    if unit == "month":
        assert local.day == 1
    if unit == "week":
        assert local.weekday() == 0
    # Local midnight, or the first instant after the clocks jumped over it.
    before = datetime.fromtimestamp(start - 1, zone)
    assert (local.hour, local.minute, local.second) == (0, 0, 0) or before.date() < local.date()


@settings(max_examples=2000, deadline=None)
@given(instants, units, zones)
def test_consecutive_windows_tile_time(t: float, unit: str, zone: ZoneInfo) -> None:
    """The next window starts where this one ends and the previous one ends where it starts: no gap, no
    overlap, and every window holds at least one local day."""
    start, end = calendar_bounds(t, unit, zone)  # type: ignore[arg-type]  # a calendar unit
    assert calendar_bounds(end, unit, zone)[0] == end  # type: ignore[arg-type]  # same
    assert calendar_bounds(start - 0.001, unit, zone)[1] == start  # type: ignore[arg-type]  # same
    assert calendar_bounds(end - 0.001, unit, zone) == (start, end)  # type: ignore[arg-type]  # same
    assert end - start >= 22 * 3600  # the shortest day on record is 23 h; Samoa skipped one whole


@settings(max_examples=500, deadline=None)
@given(instants, st.sampled_from([1.0, 30.0, 60.0, 120.0, 3600.0, 86400.0, 604800.0]))
def test_fixed_windows_stay_on_the_epoch(t: float, seconds: float) -> None:
    """A duration's windows are aligned to the Unix epoch, whatever the time zone, as in earlier versions."""
    start, end = window_bounds(t, seconds, ZoneInfo("Pacific/Chatham"))
    assert start <= t < end
    assert end - start == seconds
    assert start % seconds == 0


@pytest.mark.parametrize(
    ("moment", "unit", "zone", "start", "end", "hours"),
    [
        # Month ends and a leap day, in UTC.
        (_utc(2028, 2, 29, 23, 59, 59), "month", "UTC", _utc(2028, 2, 1), _utc(2028, 3, 1), 29 * 24),
        (_utc(2027, 2, 28, 12), "month", "UTC", _utc(2027, 2, 1), _utc(2027, 3, 1), 28 * 24),
        (_utc(2026, 12, 31, 23, 59), "month", "UTC", _utc(2026, 12, 1), _utc(2027, 1, 1), 31 * 24),
        (_utc(2028, 2, 29, 8), "day", "UTC", _utc(2028, 2, 29), _utc(2028, 3, 1), 24),
        # Berlin: the clocks go forward on 2026-03-29 (a 23-hour day) and back on 2026-10-25 (25 hours).
        (_utc(2026, 3, 29, 12), "day", "Europe/Berlin", _utc(2026, 3, 28, 23), _utc(2026, 3, 29, 22), 23),
        (_utc(2026, 10, 25, 12), "day", "Europe/Berlin", _utc(2026, 10, 24, 22), _utc(2026, 10, 25, 23), 25),
        (_utc(2026, 3, 31), "month", "Europe/Berlin", _utc(2026, 2, 28, 23), _utc(2026, 3, 31, 22), 743),
        # 2026-12-01 is a Tuesday: its week began on Monday 2026-11-30 at midnight in Berlin.
        (_utc(2026, 12, 1, 11), "week", "Europe/Berlin", _utc(2026, 11, 29, 23), _utc(2026, 12, 6, 23), 168),
        # Santiago moves its clocks at midnight: 2026-09-06 begins at 01:00 local time (04:00 UTC).
        (_utc(2026, 9, 6, 12), "day", "America/Santiago", _utc(2026, 9, 6, 4), _utc(2026, 9, 7, 3), 23),
        # Samoa skipped 2011-12-30 entirely: the 29th ends where the 31st begins.
        (_utc(2011, 12, 30, 9), "day", "Pacific/Apia", _utc(2011, 12, 29, 10), _utc(2011, 12, 30, 10), 24),
    ],
)
def test_known_windows(moment: float, unit: str, zone: str, start: float, end: float, hours: int) -> None:
    """Month ends, Feb 29, both DST changes in Berlin, a midnight DST change and a skipped day."""
    assert calendar_bounds(moment, unit, ZoneInfo(zone)) == (start, end)  # type: ignore[arg-type]  # a unit
    assert end - start == hours * 3600


def test_a_calendar_window_remembers_its_bounds_and_its_neighbours() -> None:
    """The hot-path object answers like the pure function, and knows the previous start and next end."""
    window = CalendarWindow("month", ZoneInfo("Europe/Berlin"))
    moment = _utc(2026, 3, 15)
    assert window.bounds(moment) == calendar_bounds(moment, "month", ZoneInfo("Europe/Berlin"))
    assert window.previous_id(moment) == int(_utc(2026, 1, 31, 23))
    assert window.next_end(moment) == _utc(2026, 4, 30, 22)
    assert window.window_id(_utc(2026, 4, 1)) == int(_utc(2026, 3, 31, 22))


def test_the_configuration_accepts_calendar_windows_and_names_mistakes() -> None:
    """`window: month` is a calendar window, `1d` stays a duration, and a typo is a whole-sentence error."""
    assert LimitConfig.model_validate({"limit": 1, "unit": "tokens", "window": "month"}).window == "month"
    assert LimitConfig.model_validate({"limit": 1, "unit": "tokens", "window": "1d"}).window == 86400.0
    with pytest.raises(ValueError, match="A calendar window is written day, week or month"):
        LimitConfig.model_validate({"limit": 1, "unit": "tokens", "window": "monthly"})


def test_an_unknown_time_zone_is_refused_with_its_name() -> None:
    """`limits.timezone` must be an IANA name; anything else fails at load time, naming the value."""
    assert LimitsSettings.model_validate({"timezone": "Europe/Berlin"}).timezone == "Europe/Berlin"
    for name in ("Mars/Olympus_Mons", "../../etc/passwd", ""):
        with pytest.raises(ValueError, match="is not a known IANA time zone"):
            LimitsSettings.model_validate({"timezone": name})


def test_a_limit_algorithm_is_fixed_or_sliding() -> None:
    """`algorithm` defaults to fixed, accepts sliding, and refuses anything else at load time."""
    assert LimitConfig.model_validate({"limit": 1, "unit": "tokens", "window": "1m"}).algorithm == "fixed"
    sliding = {"limit": 1, "unit": "tokens", "window": "month", "algorithm": "sliding"}
    assert LimitConfig.model_validate(sliding).algorithm == "sliding"
    with pytest.raises(ValueError, match="algorithm"):
        LimitConfig.model_validate({**sliding, "algorithm": "leaky"})
