"""The usage charts' geometry (portal/charts.py) and their SVG as the portal's templates write it: bars
stack to their totals within the plot, many series fold into "other", and names are text, never markup."""

from __future__ import annotations

from maas_gateway.portal.charts import PALETTE_SIZE, stacked_chart
from maas_gateway.portal.rendering import Renderer

MARKUP = '<script>alert("x")</script></text><b>bold</b>'


def _svg(chart_title: str, buckets: list[tuple[str, dict[str, float]]]) -> str:
    environment = Renderer([]).environment
    template = environment.from_string('{% from "_chart.html" import bar_chart %}{{ bar_chart(chart, "c") }}')
    return template.render(chart=stacked_chart(chart_title, buckets, unit="requests"))


def test_bars_stack_to_their_totals_inside_the_plot() -> None:
    """Each bar's segments add up to its total and stay between the top and the baseline; the tallest
    bar's series is the first of the legend."""
    chart = stacked_chart("Requests", [("a", {"m1": 3, "m2": 1}), ("b", {}), ("c", {"m2": 7})])
    assert chart.series == ("m2", "m1")
    assert [bar.total for bar in chart.bars] == [4, 0, 7]
    for bar in chart.bars:
        assert sum(segment.value for segment in bar.segments) == bar.total
        for segment in bar.segments:
            assert 0 <= segment.y <= chart.bottom
            assert segment.y + segment.height <= chart.bottom + 0.01
    assert [tick.text for tick in chart.ticks] == ["0", "2", "4", "6", "8"]


def test_series_beyond_the_palette_are_summed_as_other() -> None:
    """Ten models make seven series of their own and an "other" holding the rest."""
    values = {f"model-{n}": float(n + 1) for n in range(10)}
    chart = stacked_chart("Requests", [("a", values)])
    assert len(chart.series) == PALETTE_SIZE
    assert chart.series[-1] == "other"
    other = [s.value for s in chart.bars[0].segments if s.series == PALETTE_SIZE - 1]
    assert other == [1 + 2 + 3]


def test_an_empty_chart_says_so() -> None:
    """A period without usage shows a sentence, not an empty drawing."""
    html = _svg("Requests", [("a", {}), ("b", {})])
    assert "Nothing to show for this period." in html
    assert "<svg" not in html


def test_names_with_markup_are_text_in_the_svg() -> None:
    """A series or bucket named with markup is escaped in the SVG's text, titles and legend; the chart
    has a title and a description for assistive technology."""
    html = _svg(MARKUP, [(MARKUP, {MARKUP: 2.0})])
    assert "<script>" not in html
    assert "<b>bold</b>" not in html
    assert "&lt;script&gt;" in html
    assert 'role="img"' in html
    assert '<title id="c-title">' in html
    assert '<desc id="c-desc">' in html


def test_a_money_chart_writes_the_configured_currency_never_a_dollar_sign() -> None:
    """A cost chart in euros writes its summary with 'EUR' after the amount and its axis in plain
    numbers (the title names the currency), never a '$'."""
    chart = stacked_chart("Cost", [("a", {"m1": 0.5}), ("b", {"m1": 1.25})], unit="in cost", currency="EUR")
    assert [tick.text for tick in chart.ticks] == [
        "0.0000",
        "0.5000",
        "1.00",
        "1.50",
        "2.00",
    ]
    assert "1.75 EUR in cost" in chart.description
    assert "$" not in chart.description + "".join(tick.text for tick in chart.ticks)
