"""What the limiter tells its observer (budget alerts) names each window by its real bounds."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from maas_gateway.limits.readings import reading
from maas_gateway.limits.rules import LimitRule

BERLIN = ZoneInfo("Europe/Berlin")


def test_a_calendar_month_reading_spans_local_midnight_of_the_first_to_the_next_first() -> None:
    """A month window in Berlin starts at local midnight of the 1st and ends at the next month's."""
    rule = LimitRule(limit=1000, unit="tokens", window="month", timezone="Europe/Berlin")
    now = datetime(2026, 3, 29, 12, 0, tzinfo=BERLIN).timestamp()  # the day summer time starts
    counted = reading("ada", "free", "m", rule.counter("ada", "m", now), 10)
    assert counted.window_start == datetime(2026, 3, 1, tzinfo=BERLIN).timestamp()
    assert counted.window_end == datetime(2026, 4, 1, tzinfo=BERLIN).timestamp()
    assert counted.window == "month (Europe/Berlin)"
    assert counted.limit_key == "tokens/month (Europe/Berlin)/*"


def test_a_fixed_window_reading_keeps_its_epoch_aligned_bounds_and_name() -> None:
    """A fixed ``1h`` window reads as the epoch-aligned hour holding the charge."""
    rule = LimitRule(limit=10, unit="requests", window=3600.0, per_model=True)
    counted = reading("ada", "free", "m", rule.counter("ada", "m", 7_205.0), 3)
    assert (counted.window_start, counted.window_end) == (7_200.0, 10_800.0)
    assert counted.limit_key == "requests/1h/m"
    assert counted.used == 3
