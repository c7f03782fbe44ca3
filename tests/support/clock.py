"""A hand-set clock for the units that take ``clock=``: tests move time on instead of sleeping through it."""

from __future__ import annotations

__all__ = ["FakeClock"]


class FakeClock:
    """Returns ``now`` until the test changes it; pass the instance itself as the unit's ``clock``.

    The default start is a plausible Unix time (2027), so it suits both ``time.time`` and
    ``time.monotonic`` users; windows aligned to the epoch start at a known place from it.
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move time on by ``seconds``; returns the new time."""
        self.now += seconds
        return self.now
