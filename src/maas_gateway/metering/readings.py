"""Readings of the backends' own token counters, kept so that a period's backend-side count is known.

The counters are cumulative since the backend started, so the count for a period is the growth between
the readings that bound it. A counter that drops between two readings was reset (the backend restarted):
the tokens counted since the restart are the later value, and whatever the backend counted between the
earlier reading and its restart is lost to reconciliation (a reading interval's worth at most).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Protocol

__all__ = ["BackendReading", "BackendReadings", "Growth", "InMemoryBackendReadings", "growth_of"]


@dataclass(frozen=True, slots=True)
class BackendReading:
    backend: str  # the backend's base URL, password masked, as usage records name it
    model: str  # the backend's model_name label
    at: float  # Unix time of the scrape
    prompt_tokens: float
    generation_tokens: float


@dataclass(frozen=True, slots=True)
class Growth:
    """What a backend counted between two readings, and how many times its counters were reset."""

    prompt_tokens: float
    generation_tokens: float
    resets: int


def growth_of(readings: Sequence[BackendReading]) -> Growth:
    """The growth of one series' counters over ``readings`` (in time order), resets counted from zero."""
    prompt = generation = 0.0
    resets = 0
    for earlier, later in pairwise(readings):
        if later.prompt_tokens < earlier.prompt_tokens or later.generation_tokens < earlier.generation_tokens:
            resets += 1  # restarted in between: it counted ``later`` since
            prompt += later.prompt_tokens
            generation += later.generation_tokens
        else:
            prompt += later.prompt_tokens - earlier.prompt_tokens
            generation += later.generation_tokens - earlier.generation_tokens
    return Growth(prompt, generation, resets)


class BackendReadings(Protocol):
    async def record(self, readings: Sequence[BackendReading]) -> None:
        """Store readings; one already stored (same backend, model and time) is kept as it was."""
        ...

    async def series(self, since: float, until: float) -> dict[tuple[str, str], list[BackendReading]]:
        """Per (backend, model): the readings from ``since`` to ``until`` (both included), preceded by
        the last one before ``since`` if any, in time order."""
        ...

    async def prune(self, before: float, *, limit: int) -> int:
        """Delete at most ``limit`` readings older than ``before``; return how many went."""
        ...


class InMemoryBackendReadings:
    """Readings kept in this process, for the in-memory ledger and tests."""

    def __init__(self) -> None:
        self._series: dict[tuple[str, str], list[BackendReading]] = {}

    async def record(self, readings: Sequence[BackendReading]) -> None:
        for reading in readings:
            kept = self._series.setdefault((reading.backend, reading.model), [])
            times = [item.at for item in kept]
            index = bisect.bisect_left(times, reading.at)
            if index < len(kept) and kept[index].at == reading.at:
                continue
            kept.insert(index, reading)

    async def series(self, since: float, until: float) -> dict[tuple[str, str], list[BackendReading]]:
        found: dict[tuple[str, str], list[BackendReading]] = {}
        for key, kept in self._series.items():
            times = [item.at for item in kept]
            first = max(bisect.bisect_left(times, since) - 1, 0)
            last = bisect.bisect_right(times, until)
            chosen = [item for item in kept[first:last] if item.at <= until]
            if chosen:
                found[key] = chosen
        return found

    async def prune(self, before: float, *, limit: int) -> int:
        pruned = 0
        for key in sorted(self._series):
            kept = self._series[key]
            while kept and kept[0].at < before and pruned < limit:
                kept.pop(0)
                pruned += 1
        return pruned
