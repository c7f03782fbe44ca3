"""Human durations (``30s``, ``2m``, ``1h``, ``1d``) as used for limit windows and key lifetimes."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BeforeValidator

__all__ = ["CALENDAR_WINDOWS", "Duration", "LimitWindow", "format_duration", "parse_duration", "parse_window"]

CALENDAR_WINDOWS = ("day", "week", "month")

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")


def parse_duration(value: object, *, allow_zero: bool = False) -> float:
    """Return the number of seconds in ``value`` (a number of seconds or a string like ``2m``).

    Raises ``ValueError`` with a whole-sentence message for anything else.
    """
    if isinstance(value, bool):
        raise ValueError("A duration must be a number of seconds or a string such as '2m' or '1h'.")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        if match is None:
            raise ValueError(
                f"'{value}' is not a duration; write a number and a unit, such as 30s, 2m, 1h or 1d."
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise ValueError("A duration must be a number of seconds or a string such as '2m' or '1h'.")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError("A duration must be longer than zero.")
    return seconds


def format_duration(seconds: float) -> str:
    """Render seconds in the largest whole unit (``120`` becomes ``2m``)."""
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and float(seconds / size).is_integer():
            return f"{int(seconds / size)}{unit}"
    return f"{seconds:g}s"


def parse_window(value: object) -> float | str:
    """A limit's window: a calendar unit (``day``, ``week``, ``month``) as it is, else a duration."""
    if isinstance(value, str) and value.strip() in CALENDAR_WINDOWS:
        return value.strip()
    try:
        return parse_duration(value)
    except ValueError as error:
        raise ValueError(f"{error} A calendar window is written day, week or month.") from None


Duration = Annotated[float, BeforeValidator(parse_duration)]
LimitWindow = Annotated[float | Literal["day", "week", "month"], BeforeValidator(parse_window)]
