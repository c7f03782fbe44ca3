"""Values owned by other parts (limit storage, ledger writer), exported as metrics.

The owners keep plain integers that they update on their own paths; metrics only read them. In one
process they are read when Prometheus scrapes (``ScrapeTimeValues``), which costs nothing in between.
With ``--workers N`` the scrape happens in the supervisor, which cannot read a worker's memory, so each
worker copies its values into prometheus_client's shared files about once a second
(``PublishedValues``): counters by their increase, so the pod's total survives a worker's restart, and
gauges as they are, summed or maximised over the live workers.

A family of values (``add_family``) is one metric with labels, read as a mapping from label values to
numbers (the backends of every model, say); series that disappear (a model removed by a reload) are no
longer shown in one process, and read 0 from then on with several workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["Combine", "Kind", "LabelledValues", "PublishedValues", "ScrapeTimeValues"]

Kind = Literal["counter", "gauge"]
# How one gauge of several workers becomes the pod's: a total (records buffered) or the worst (degraded).
Combine = Literal["sum", "max"]
_LIVE_MODES: dict[Combine, Literal["livesum", "livemax"]] = {"sum": "livesum", "max": "livemax"}
# Label values → value: the series of one metric family, read when published or scraped.
LabelledValues = Callable[[], Mapping[tuple[str, ...], float]]


class ScrapeTimeValues(Collector):
    """Read each value when the registry is collected: exact, and free between scrapes."""

    def __init__(self) -> None:
        self.sources: list[tuple[Kind, str, str, Callable[[], float]]] = []
        self.families: list[tuple[Kind, str, str, Sequence[str], LabelledValues]] = []

    def add(
        self, kind: Kind, name: str, documentation: str, read: Callable[[], float], combine: Combine
    ) -> None:
        self.sources.append((kind, name, documentation, read))

    def add_family(
        self,
        kind: Kind,
        name: str,
        documentation: str,
        labels: Sequence[str],
        read: LabelledValues,
        combine: Combine,
    ) -> None:
        self.families.append((kind, name, documentation, labels, read))

    def publish(self) -> None:
        """Nothing to do: values are read at collection."""

    def collect(self) -> Iterable[Metric]:
        for kind, name, documentation, read in self.sources:
            family: Metric
            if kind == "counter":
                family = CounterMetricFamily(name, documentation, value=read())
            else:
                family = GaugeMetricFamily(name, documentation, value=read())
            yield family
        for kind, name, documentation, labels, read_family in self.families:
            labelled: CounterMetricFamily | GaugeMetricFamily
            if kind == "counter":
                labelled = CounterMetricFamily(name, documentation, labels=labels)
            else:
                labelled = GaugeMetricFamily(name, documentation, labels=labels)
            for values, value in read_family().items():
                labelled.add_metric(values, value)
            yield labelled


class _PublishedCounter:
    def __init__(self, counter: Counter, read: Callable[[], float]) -> None:
        self.counter, self.read, self.published = counter, read, 0.0

    def publish(self) -> None:
        value = self.read()
        if value > self.published:  # owners' counters only grow; a smaller value would be a bug there
            self.counter.inc(value - self.published)
            self.published = value


class _PublishedFamily:
    """A labelled counter or gauge, copied series by series; a counter that went back (its owner was
    replaced) starts counting again from its new value."""

    def __init__(self, metric: Counter | Gauge, read: LabelledValues) -> None:
        self.metric, self.read = metric, read
        self.published: dict[tuple[str, ...], float] = {}

    def publish(self) -> None:
        current = self.read()
        for values, value in current.items():
            child = self.metric.labels(*values)
            if isinstance(child, Gauge):
                child.set(value)
            else:
                last = self.published.get(values, 0.0)
                increase = value - last if value >= last else value  # gone back: counting anew
                if increase:
                    child.inc(increase)
            self.published[values] = value
        for values in [gone for gone in self.published if gone not in current]:
            child = self.metric.labels(*values)
            if isinstance(child, Gauge):
                child.set(0)
            del self.published[values]


class PublishedValues:
    """Copy each value into a multiprocess metric when ``publish`` is called (by the worker, periodically)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._counters: list[_PublishedCounter] = []
        self._gauges: list[tuple[Gauge, Callable[[], float]]] = []
        self._families: list[_PublishedFamily] = []

    def add(
        self, kind: Kind, name: str, documentation: str, read: Callable[[], float], combine: Combine
    ) -> None:
        if kind == "counter":
            self._counters.append(
                _PublishedCounter(Counter(name, documentation, registry=self.registry), read)
            )
        else:
            gauge = Gauge(name, documentation, registry=self.registry, multiprocess_mode=_LIVE_MODES[combine])
            self._gauges.append((gauge, read))

    def add_family(
        self,
        kind: Kind,
        name: str,
        documentation: str,
        labels: Sequence[str],
        read: LabelledValues,
        combine: Combine,
    ) -> None:
        metric: Counter | Gauge
        if kind == "counter":
            metric = Counter(name, documentation, labels, registry=self.registry)
        else:
            metric = Gauge(
                name, documentation, labels, registry=self.registry, multiprocess_mode=_LIVE_MODES[combine]
            )
        self._families.append(_PublishedFamily(metric, read))

    def publish(self) -> None:
        for counter in self._counters:
            counter.publish()
        for gauge, read in self._gauges:
            gauge.set(read())
        for family in self._families:
            family.publish()
