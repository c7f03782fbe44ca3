"""The ``x-ratelimit-*`` headers of the origin system, computed from counter values."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from maas_gateway.limits.charge import TokenCharge
from maas_gateway.limits.rules import CounterRef

__all__ = ["rate_limit_headers"]

_KINDS = {"requests": "requests", "tokens": "tokens", "cost": "cost"}


def rate_limit_headers(
    counters: Sequence[CounterRef], values: Sequence[int], *, consumed: TokenCharge | None
) -> list[tuple[str, str]]:
    """Headers for the tightest request window, the tightest token window and the tightest cost window
    (``x-ratelimit-*-cost``, in the configured currency with six decimals).

    "Tightest" is the window with the fewest units left. Total-token windows are preferred; windows on
    input or output tokens stand in only when a tier has no total-token window. ``consumed`` is what
    this request was charged (``None`` while not yet known, as on a stream's first bytes);
    ``x-ratelimit-consumed-tokens`` reports it in the unit of the token window the headers describe, so
    that remaining + consumed add up (a ``completion_tokens`` window counts output tokens only).
    """
    # One pass (this runs for every limited answer): the tightest window of each kind, the first of equals.
    tightest: dict[str, tuple[CounterRef, int]] = {}
    for counter, value in zip(counters, values, strict=True):
        rule = counter.rule
        kind = _KINDS.get(rule.unit, "partial")  # "partial": input or output tokens
        best = tightest.get(kind)
        if best is None or rule.limit - value < best[0].rule.limit - best[1]:
            tightest[kind] = (counter, value)
    headers: list[tuple[str, str]] = []
    requests = tightest.get("requests")
    if requests is not None:
        headers += _window("requests", *requests, str)
    tokens = tightest.get("tokens") or tightest.get("partial")
    if tokens is not None:
        headers += _window("tokens", *tokens, str)
        if consumed is not None:
            headers.append(("x-ratelimit-consumed-tokens", str(consumed.in_unit(tokens[0].rule.unit))))
    money = tightest.get("cost")
    if money is not None:
        headers += _window("cost", *money, _decimal)
        if consumed is not None:
            headers.append(("x-ratelimit-consumed-cost", _decimal(consumed.cost)))
    return headers


def _window(
    kind: str, counter: CounterRef, value: int, shown: Callable[[int], str]
) -> tuple[tuple[str, str], ...]:
    limit = counter.rule.limit
    return (
        (f"x-ratelimit-limit-{kind}", shown(limit)),
        (f"x-ratelimit-remaining-{kind}", shown(max(0, limit - value))),
        (f"x-ratelimit-reset-{kind}", f"{math.ceil(counter.reset_in)}s"),
    )


def _decimal(micros: int) -> str:
    """Money in the headers: the currency's units with six decimals (``4.987700``), exact."""
    whole, fraction = divmod(micros, 1_000_000)
    return f"{whole}.{fraction:06d}"
