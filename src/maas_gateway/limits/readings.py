"""What the limiter tells an observer after it counts: each counter's value once a charge has landed.

This is the limiter's one hook for other features (budget alerts, ``alerts/``): plain values, named for
what they mean, so an observer never needs the limiter's internals (counter keys, window arithmetic).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from maas_gateway.limits.rules import CounterRef

__all__ = ["CounterReading", "UsageObserver", "reading"]


@dataclass(slots=True)  # per request: a frozen dataclass costs 4x as much to build
class CounterReading:
    """One limit's counter for one user and window, right after a charge (or a request) was counted.

    ``limit_key`` names the limit the same way on every replica and across restarts (its unit, window
    and model scope); with ``user`` and ``window_start`` it names one budget for one window.
    """

    user: str
    tier: str
    limit_key: str
    limit: int
    unit: str
    window: str  # as configured: ``1h``, ``30d``, ``month (Europe/Berlin)``
    window_start: float
    window_end: float
    used: int


UsageObserver = Callable[[Sequence[CounterReading]], None]
"""Called with the readings of one admission or one settled charge; must not block (it runs on the
request path) and must not raise."""


_window_names: dict[tuple[float | str, str], str] = {}  # a window's name, formatted once (few exist)


def reading(user: str, tier: str, model: str, counter: CounterRef, used: int) -> CounterReading:
    rule = counter.rule
    if rule.scope != "user":  # a team's, key's, tier's or everyone's budget: its owner, e.g. team:research
        user = counter.subject.replace("\x1f", ":").rstrip(":")
    scope = rule.model or (model if rule.per_model else "*")
    if isinstance(rule.window, str):  # a calendar window: its index is its start
        start = float(counter.window_index)
        end = rule.span.bounds(start)[1]
    else:
        start = counter.window_index * rule.window
        end = start + rule.window
    named = (rule.window, rule.timezone)
    window = _window_names.get(named)
    if window is None:
        window = _window_names[named] = rule.window_name
    return CounterReading(
        user=user,
        tier=tier,
        limit_key=f"{rule.unit}/{window}/{scope}",
        limit=rule.limit,
        unit=rule.unit,
        window=window,
        window_start=start,
        window_end=end,
        used=used,
    )
