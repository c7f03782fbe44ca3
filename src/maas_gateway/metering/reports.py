"""Reading usage for people (the portal's pages, the admin API): the interface, its ranges and answers.

Reports read the hourly rollups, so they work in whole hours: a ``ReportRange`` is a range of hours, and
``ReportRange.last(7 * 86400, now)`` is the last seven days up to and including the current hour. The
SQL implementation (``sql_reports.py``) and the in-memory one (``memory_reports.py``) answer alike
(tests/test_usage_reports_contract.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from maas_gateway.metering.records import UsageRecord

__all__ = [
    "DIMENSIONS",
    "MEASURES",
    "Dimension",
    "Measure",
    "ReportRange",
    "UsageGroup",
    "UsageReports",
    "UsageTotals",
    "check_after",
    "check_dimensions",
    "group_order",
]

Dimension = Literal["user", "tier", "model", "endpoint", "key_id", "outcome", "day", "hour", "team"]
DIMENSIONS: tuple[Dimension, ...] = (
    "user",
    "tier",
    "model",
    "endpoint",
    "key_id",
    "outcome",
    "day",
    "hour",
    "team",
)
Measure = Literal["requests", "total_tokens", "charged_tokens", "cost"]
MEASURES: tuple[Measure, ...] = ("requests", "total_tokens", "charged_tokens", "cost")

HOUR = 3600


@dataclass(frozen=True, slots=True)
class ReportRange:
    """Whole hours since the epoch, ``first_hour`` included and ``last_hour`` excluded."""

    first_hour: int
    last_hour: int

    def __post_init__(self) -> None:
        if self.last_hour < self.first_hour:
            raise ValueError("A report range must not end before it starts.")

    @classmethod
    def last(cls, seconds: float, now: float) -> ReportRange:
        """The last ``seconds`` (24 h, 7 d, 30 d) up to now, in whole hours: the current hour included."""
        last_hour = math.floor(now / HOUR) + 1
        return cls(last_hour - math.ceil(seconds / HOUR), last_hour)

    @classmethod
    def between(cls, since: float, until: float) -> ReportRange:
        """The whole hours that overlap ``[since, until)`` (Unix seconds)."""
        return cls(math.floor(since / HOUR), max(math.floor(since / HOUR), math.ceil(until / HOUR)))

    @property
    def since(self) -> int:
        return self.first_hour * HOUR

    @property
    def until(self) -> int:
        return self.last_hour * HOUR


@dataclass(frozen=True, slots=True)
class UsageTotals:
    requests: int = 0
    ok: int = 0  # answered (status below 400)
    client_errors: int = 0  # refused for the caller's own fault (a backend's 400, an unknown model)
    failed: int = 0  # failed at the gateway or a backend, not charged
    rate_limited: int = 0  # refused with a 429 at admission
    broken: int = 0  # streams the backend broke off mid-way (charged for what was delivered)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    charged_tokens: int = 0
    cost: float = 0.0
    streamed: int = 0
    latency_ms_sum: float = 0.0

    @classmethod
    def of(cls, values: Sequence[float]) -> UsageTotals:
        """Totals from the thirteen sums in field order (as the stores compute them)."""
        counts = [int(value) for value in values[:10]]
        requests, ok, client_errors, failed, rate_limited, broken, prompt, completion, total, charged = counts
        return cls(
            requests,
            ok,
            client_errors,
            failed,
            rate_limited,
            broken,
            prompt,
            completion,
            total,
            charged,
            float(values[10]),
            int(values[11]),
            float(values[12]),
        )

    @property
    def errors(self) -> int:
        """Requests that did not get an answer, whoever's fault, 429s apart."""
        return self.client_errors + self.failed

    @property
    def mean_latency_ms(self) -> float:
        return self.latency_ms_sum / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class UsageGroup:
    """The totals of one combination of dimensions: ``key`` maps each dimension asked for to its value
    (``day`` and ``hour`` as the Unix seconds they start at, ``model`` None for requests without one)."""

    key: dict[str, str | int | None]
    totals: UsageTotals


class UsageReports(Protocol):
    async def totals(self, period: ReportRange, *, user: str | None = None) -> UsageTotals:
        """Everything in ``period``, of one user or of all."""
        ...

    async def breakdown(
        self,
        period: ReportRange,
        group_by: Sequence[Dimension],
        *,
        user: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        after: Sequence[str | int | None] | None = None,
    ) -> list[UsageGroup]:
        """One group per combination of ``group_by`` that has usage, ordered by each dimension in turn
        (strings by code point, missing models last); ``limit`` and ``offset`` page through them. With
        ``after`` (the key of the last group of the page before, its values in ``group_by`` order) the
        page starts just after that group, and ``offset`` counts from there: keyset paging, which over a
        breakdown led by the user costs the same however deep the page. A developer's daily series per
        model is ``breakdown(period, ("day", "model"), user=...)``."""
        ...

    async def top(
        self, period: ReportRange, dimension: Dimension, *, by: Measure = "cost", limit: int = 10
    ) -> list[UsageGroup]:
        """The ``limit`` largest groups of ``dimension`` by ``by``, largest first (ties by value)."""
        ...

    async def recent_calls(self, user: str, limit: int = 20) -> list[UsageRecord]:
        """The user's latest raw records, newest first (the in-memory ledger keeps only the last few)."""
        ...


def group_order(values: Iterable[str | int | None]) -> tuple[tuple[bool, str | int], ...]:
    """A sort key of a group's key values in breakdown order: each value ascending (strings by code
    point, as Python compares them), None after every value."""
    return tuple((value is None, "" if value is None else value) for value in values)


def check_dimensions(group_by: Sequence[str]) -> None:
    """A clear error for a dimension that does not exist or is asked for twice."""
    for name in group_by:
        if name not in DIMENSIONS:
            raise ValueError(f"Usage cannot be grouped by '{name}'; choose from {', '.join(DIMENSIONS)}.")
    if len(set(group_by)) != len(group_by):
        raise ValueError("Each dimension may be grouped by once.")


def check_after(group_by: Sequence[str], after: Sequence[str | int | None] | None) -> None:
    """A clear error for a page's starting key that does not fit the dimensions."""
    if after is not None and len(after) != len(group_by):
        raise ValueError("A page's starting key must have one value for each dimension grouped by.")
