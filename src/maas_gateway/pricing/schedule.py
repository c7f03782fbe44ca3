"""A model's prices over time: each version is effective from a moment until the next one.

A request is priced by the version in effect when it arrived, so a price change never rewrites past
charges; the usage record names that version (``PriceVersion.name``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

__all__ = ["PriceSchedule", "PriceVersion"]


@dataclass(frozen=True, slots=True)
class PriceVersion:
    """Prices per million tokens, effective from ``effective_from`` (Unix time)."""

    effective_from: float
    input_per_million: float = 0.0
    output_per_million: float = 0.0
    cached_input_per_million: float = 0.0
    # Built once: every usage record of a priced model names its version (formatting it cost ~3 µs).
    _name: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        moment = datetime.fromtimestamp(self.effective_from, UTC)
        name = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if moment.microsecond else "%Y-%m-%dT%H:%M:%SZ")
        object.__setattr__(self, "_name", name)

    @property
    def name(self) -> str:
        """The version as the ledger stores it: its effective moment in ISO 8601, UTC (with microseconds
        when it has them, so two versions never share a name)."""
        return self._name

    def micros(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> int:
        """What the tokens cost in micro-units, rounded up: a price per million tokens is a token's price
        in micro-units. ``cached_tokens`` are the part of ``prompt_tokens`` the backend had cached."""
        cached = min(max(cached_tokens, 0), prompt_tokens)
        exact = (
            (prompt_tokens - cached) * self.input_per_million
            + cached * self.cached_input_per_million
            + completion_tokens * self.output_per_million
        )
        return max(0, math.ceil(exact - 1e-6))  # the tolerance absorbs binary float noise, not money

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        """What the tokens cost in the currency, as the ledger stores it."""
        return self.micros(prompt_tokens, completion_tokens, cached_tokens) / 1_000_000


class PriceSchedule:
    """One model's price versions, sorted by when they take effect."""

    __slots__ = ("_starts", "_versions")

    def __init__(self, versions: Iterable[PriceVersion]) -> None:
        ordered = sorted(versions, key=lambda version: version.effective_from)
        starts = [version.effective_from for version in ordered]
        if len(set(starts)) != len(starts):
            raise ValueError("Two price versions of one model take effect at the same moment.")
        self._versions = tuple(ordered)
        self._starts = starts

    @property
    def versions(self) -> tuple[PriceVersion, ...]:
        return self._versions

    def at(self, moment: float) -> PriceVersion | None:
        """The version in effect at ``moment``; ``None`` before the first (the request is free)."""
        position = bisect.bisect_right(self._starts, moment)
        return self._versions[position - 1] if position else None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PriceSchedule) and self._versions == other._versions

    def __hash__(self) -> int:
        return hash(self._versions)
