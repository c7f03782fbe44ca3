"""A clock the test sets by hand, for units that take ``clock: Callable[[], float]``."""

from __future__ import annotations

__all__ = ["FakeClock"]


class FakeClock:
    """Reads ``now``; ``advance`` moves it forward. Starts well away from zero, as a monotonic clock does."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
