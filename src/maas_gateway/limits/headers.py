"""The ``x-ratelimit-*`` headers of the origin system, computed from counter values."""

from __future__ import annotations

import math
from collections.abc import Sequence

from maas_gateway.limits.charge import TokenCharge
from maas_gateway.limits.rules import CounterRef

__all__ = ["rate_limit_headers"]


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
    pairs = list(zip(counters, values, strict=True))
    requests = [(c, v) for c, v in pairs if c.rule.unit == "requests"]
    tokens = [(c, v) for c, v in pairs if c.rule.unit == "tokens"]
    tokens = tokens or [(c, v) for c, v in pairs if c.rule.unit not in ("requests", "cost")]
    money = [(c, v) for c, v in pairs if c.rule.unit == "cost"]
    headers: list[tuple[str, str]] = []
    token_counter = None
    for kind, group in (("requests", requests), ("tokens", tokens), ("cost", money)):
        if not group:
            continue
        counter, value = min(group, key=lambda pair: pair[0].rule.limit - pair[1])
        shown = _decimal if kind == "cost" else str
        if kind == "tokens":
            token_counter = counter
        headers += [
            (f"x-ratelimit-limit-{kind}", shown(counter.rule.limit)),
            (f"x-ratelimit-remaining-{kind}", shown(max(0, counter.rule.limit - value))),
            (f"x-ratelimit-reset-{kind}", f"{math.ceil(counter.reset_in)}s"),
        ]
    if tokens and consumed is not None and token_counter is not None:
        headers.append(("x-ratelimit-consumed-tokens", str(consumed.in_unit(token_counter.rule.unit))))
    if money and consumed is not None:
        headers.append(("x-ratelimit-consumed-cost", _decimal(consumed.cost)))
    return headers


def _decimal(micros: int) -> str:
    """Money in the headers: the currency's units with six decimals (``4.987700``), exact."""
    whole, fraction = divmod(micros, 1_000_000)
    return f"{whole}.{fraction:06d}"
