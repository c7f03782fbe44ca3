"""vLLM's Prometheus metrics for one simulator, under vLLM's names and labels.

The values are read from the engine when ``/metrics`` is scraped, so a request costs no metric updates
but the first-token histogram's one bucket count. Each simulator has a registry of its own: several may
share a process (a test's, or `maas up`'s with the gateway), and the gateway's ``--workers``
multiprocess mode must not take them in.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from maas_gateway.simulator.engine import FINISH_REASONS, Engine

__all__ = ["CONTENT_TYPE", "SimulatorMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

# vLLM's buckets for vllm:time_to_first_token_seconds.
TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
_LABELS = ["model_name", "engine"]


class SimulatorMetrics:
    """The metrics of one engine, labelled with the served model's name as vLLM labels them."""

    def __init__(self, engine: Engine, model_name: str) -> None:
        self._engine = engine
        self._labels = [model_name, "0"]  # one engine, index 0, as vLLM numbers them
        self._ttft_counts = [0] * (len(TTFT_BUCKETS) + 1)  # the last is +Inf
        self._ttft_sum = 0.0
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def observe_time_to_first_token(self, seconds: float) -> None:
        self._ttft_counts[bisect.bisect_left(TTFT_BUCKETS, seconds)] += 1
        self._ttft_sum += seconds

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def describe(self) -> Iterable[Metric]:
        return self.collect()

    def collect(self) -> Iterable[Metric]:
        engine, labels = self._engine, self._labels
        gauges = (
            ("vllm:num_requests_running", "Number of requests in model execution batches.", engine.running),
            ("vllm:num_requests_waiting", "Number of requests waiting to be processed.", engine.waiting),
            ("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", engine.kv_cache_usage),
            # The name older vLLM versions use for the same value.
            (
                "vllm:gpu_cache_usage_perc",
                "GPU KV-cache usage. 1 means 100 percent usage. DEPRECATED: Use vllm:kv_cache_usage_perc.",
                engine.kv_cache_usage,
            ),
        )
        for name, documentation, value in gauges:
            gauge = GaugeMetricFamily(name, documentation, labels=_LABELS)
            gauge.add_metric(labels, value)
            yield gauge
        counters = (
            ("vllm:prompt_tokens", "Number of prefill tokens processed.", engine.prompt_tokens_total),
            (
                "vllm:generation_tokens",
                "Number of generation tokens processed.",
                engine.generation_tokens_total,
            ),
        )
        for name, documentation, total in counters:
            counter = CounterMetricFamily(name, documentation, labels=_LABELS)
            counter.add_metric(labels, total)
            yield counter
        success = CounterMetricFamily(
            "vllm:request_success",
            "Count of successfully processed requests.",
            labels=[*_LABELS, "finished_reason"],
        )
        for reason in FINISH_REASONS:
            success.add_metric([*labels, reason], engine.finished[reason])
        yield success
        yield self._time_to_first_token()

    def _time_to_first_token(self) -> Metric:
        histogram = HistogramMetricFamily(
            "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", labels=_LABELS
        )
        buckets: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip([*map(str, TTFT_BUCKETS), "+Inf"], self._ttft_counts, strict=True):
            running += count
            buckets.append((bound, running))
        histogram.add_metric(self._labels, buckets, self._ttft_sum)
        return histogram
