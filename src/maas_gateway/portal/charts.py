"""Stacked bar charts for the usage pages, as numbers a template turns into inline SVG.

The geometry is computed here (no chart library, no script): each bar is a bucket (an hour or a day),
each segment a series (a model, an outcome), coloured by the CSS class ``series-N`` (``portal.css``
holds a palette that keeps at least 4.5:1 contrast against the white card). Labels are plain strings,
escaped by the template like any other text. The table beside each chart carries the same numbers as
text, for screen readers and for anyone who wants the exact figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from maas_gateway.portal.money_words import amount_text

__all__ = ["PALETTE_SIZE", "Bar", "Chart", "Segment", "Tick", "stacked_chart"]

PALETTE_SIZE = 8  # series beyond the palette are summed into "other", the last colour
WIDTH = 720.0
HEIGHT = 240.0
LEFT = 64.0  # room for the value axis' labels
BOTTOM = 28.0  # room for the bucket labels
TOP = 10.0


@dataclass(frozen=True, slots=True)
class Segment:
    series: int  # the index of its series (its colour and legend entry)
    y: float
    height: float
    value: float


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    x: float
    width: float
    total: float
    segments: tuple[Segment, ...]
    labelled: bool  # whether its label is written under it (every few bars when there are many)


@dataclass(frozen=True, slots=True)
class Tick:
    y: float
    text: str


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    description: str  # the chart's text summary (aria-label), the table below has the details
    series: tuple[str, ...]
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    width: float = WIDTH
    height: float = HEIGHT
    left: float = LEFT
    bottom: float = HEIGHT - BOTTOM

    @property
    def empty(self) -> bool:
        return all(bar.total == 0 for bar in self.bars)


def stacked_chart(
    title: str,
    buckets: Sequence[tuple[str, Mapping[str, float]]],
    *,
    unit: str = "",
    currency: str | None = None,
) -> Chart:
    """One bar per bucket (its label and each series' value), stacked in the order of the series'
    totals, largest first; ``unit`` names what is counted in the summary ("requests"); ``currency``
    (``pricing.currency``) makes the values amounts of money, written with its code."""
    totals: dict[str, float] = {}
    for _label, values in buckets:
        for name, value in values.items():
            totals[name] = totals.get(name, 0.0) + value
    ranked = sorted(totals, key=lambda name: (-totals[name], name))
    series = ranked[: PALETTE_SIZE - 1] + (["other"] if len(ranked) >= PALETTE_SIZE else [])
    index = {name: min(position, PALETTE_SIZE - 1) for position, name in enumerate(ranked)}
    peak = max((sum(values.values()) for _label, values in buckets), default=0.0)
    top = _nice(peak) if currency else max(4.0, _nice(peak))  # whole counts: ticks at whole numbers
    plot = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / max(1, len(buckets))
    every = max(1, math.ceil(len(buckets) / 12))
    bars = []
    for position, (label, values) in enumerate(buckets):
        stacked = [0.0] * len(series)
        for name, value in values.items():
            stacked[index[name]] += value
        base = HEIGHT - BOTTOM
        segments = []
        for number, value in enumerate(stacked):
            if value <= 0:
                continue
            height = plot * value / top
            base -= height
            segments.append(Segment(number, round(base, 2), round(height, 2), value))
        bars.append(
            Bar(
                label=label,
                x=round(LEFT + position * slot + slot * 0.15, 2),
                width=round(slot * 0.7, 2),
                total=sum(stacked),
                segments=tuple(segments),
                labelled=position % every == 0,
            )
        )
    ticks = tuple(  # the axis has room for a number only: a money chart's title names its currency
        Tick(round(HEIGHT - BOTTOM - plot * step / 4, 2), _number(top * step / 4, currency, code=False))
        for step in range(5)
    )
    whole = sum(totals.values())
    description = (
        f"{title}: {_number(whole, currency)} {unit} in all over {len(buckets)} bars"
        + (f", the most from {ranked[0]}" if ranked and whole else "")
        + "; the table below lists every value."
    )
    return Chart(title, description, tuple(series), tuple(bars), ticks)


def _nice(peak: float) -> float:
    """The axis' top: 1, 2, 4 or 8 times a power of ten, at or above ``peak`` (1 for an empty chart), so
    that its quarters (the ticks) are round numbers too."""
    if peak <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(peak))
    for factor in (1.0, 2.0, 4.0, 8.0, 10.0):
        if factor * power >= peak:
            return factor * power
    return 10.0 * power


def _number(value: float, currency: str | None, *, code: bool = True) -> str:
    if currency:
        text = amount_text(value, currency, 4 if value < 1 else 2)
        return text if code else text.removesuffix(f" {currency}")
    if value >= 1_000_000:
        return f"{value / 1_000_000:,.1f}M"
    if value >= 10_000:
        return f"{value / 1000:,.0f}k"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"
