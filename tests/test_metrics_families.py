"""Labelled values owned elsewhere (a model's backends), exported at scrape time in one process and
published by each worker of several."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from maas_gateway.metrics.watched import PublishedValues, ScrapeTimeValues


def _lines(registry: CollectorRegistry, name: str) -> list[str]:
    text = generate_latest(registry).decode()
    return sorted(line for line in text.splitlines() if line.startswith(name + "{"))


def test_a_family_is_read_when_scraped() -> None:
    """One process: each series is read at collection; a series that is gone is no longer shown."""
    series: dict[tuple[str, ...], float] = {("m", "http://a"): 2.0, ("m", "http://b"): 0.0}
    values = ScrapeTimeValues()
    values.add_family(
        "gauge", "in_flight", "Requests in flight.", ("model", "backend"), lambda: series, "sum"
    )
    registry = CollectorRegistry()
    registry.register(values)
    assert _lines(registry, "in_flight") == [
        'in_flight{backend="http://a",model="m"} 2.0',
        'in_flight{backend="http://b",model="m"} 0.0',
    ]
    del series[("m", "http://b")]
    assert _lines(registry, "in_flight") == ['in_flight{backend="http://a",model="m"} 2.0']


def test_a_published_counter_family_never_goes_back() -> None:
    """A worker publishes each series' increase; a count that went back (its owner was replaced by a
    reload) counts on from there, so the exported counter only grows."""
    counts: dict[tuple[str, ...], float] = {("m", "connect"): 3.0}
    registry = CollectorRegistry()
    published = PublishedValues(registry)
    published.add_family("counter", "retries", "Retries.", ("model", "cause"), lambda: counts, "sum")
    published.publish()
    counts[("m", "connect")] = 5.0
    published.publish()
    assert _lines(registry, "retries_total") == ['retries_total{cause="connect",model="m"} 5.0']
    counts[("m", "connect")] = 1.0  # a new owner started from zero
    published.publish()
    assert _lines(registry, "retries_total") == ['retries_total{cause="connect",model="m"} 6.0']


def test_a_published_gauge_family_reads_zero_once_its_series_is_gone() -> None:
    """A gauge series that disappears (its model was removed) is set to 0 rather than left as it was."""
    states: dict[tuple[str, ...], float] = {("m", "http://a", "ejected"): 1.0}
    registry = CollectorRegistry()
    published = PublishedValues(registry)
    published.add_family("gauge", "state", "State.", ("model", "backend", "state"), lambda: states, "max")
    published.publish()
    assert _lines(registry, "state") == ['state{backend="http://a",model="m",state="ejected"} 1.0']
    states.clear()
    published.publish()
    assert _lines(registry, "state") == ['state{backend="http://a",model="m",state="ejected"} 0.0']
