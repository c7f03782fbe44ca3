"""A vLLM server's load, read from the Prometheus text of its ``/metrics``.

Three gauges matter: ``vllm:num_requests_waiting``, ``vllm:num_requests_running`` and the KV cache's use,
``vllm:kv_cache_usage_perc`` (0-1, despite the name), called ``vllm:gpu_cache_usage_perc`` before vLLM
0.10; when a server reports both, the newer name wins. Series are matched by their ``model_name`` label
when a model is named (a series without that label counts for any model), and added up over the rest of
their labels: several engines (``engine="0"``, ``"1"``, ...) behind one server add their queues, and their
cache use is averaged.

A vLLM ``/metrics`` answer is mostly histograms: tens of kilobytes, of which these gauges are a few lines.
Their sample lines are picked out first (one regular expression, in C) and only those are parsed, by
``prometheus_client``'s parser, on the event loop that also serves the requests: for a 38 KB answer that
is about 1 ms, against about 30 ms for parsing it whole. Their ``# HELP`` and ``# TYPE`` lines are left
out too: the parser needs neither to read a gauge.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from prometheus_client.parser import text_string_to_metric_families

from maas_gateway.balancing.load import LoadSample

__all__ = ["MetricsFormatError", "parse_vllm_load"]

WAITING = "vllm:num_requests_waiting"
RUNNING = "vllm:num_requests_running"
KV_CACHE = "vllm:kv_cache_usage_perc"
KV_CACHE_BEFORE_0_10 = "vllm:gpu_cache_usage_perc"

_SAMPLE_LINE = re.compile(
    r"^vllm:(?:num_requests_(?:waiting|running)|(?:kv|gpu)_cache_usage_perc)[{ \t].*$", re.MULTILINE
)


class MetricsFormatError(ValueError):
    """The metrics text could not be read; the message says why, as a sentence."""


def parse_vllm_load(text: str, model: str | None = None) -> LoadSample | None:
    """The load in ``text``; None when it has no waiting or no running gauge (for ``model``, if named).

    Raises ``MetricsFormatError`` when a line of those gauges is malformed or holds an impossible value.
    Lines of other metrics are not read, so garbage in them goes unnoticed.
    """
    relevant = "\n".join(match.group(0) for match in _SAMPLE_LINE.finditer(text))
    values: dict[str, list[float]] = {WAITING: [], RUNNING: [], KV_CACHE: [], KV_CACHE_BEFORE_0_10: []}
    try:
        for family in text_string_to_metric_families(relevant):
            for sample in family.samples:
                series = values.get(sample.name)
                if series is None or (model is not None and sample.labels.get("model_name", model) != model):
                    continue
                series.append(_checked(sample.name, sample.value))
    except MetricsFormatError:
        raise
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        # The parser's errors on malformed text are not one documented type; these are the ones it raises.
        raise MetricsFormatError(f"The vLLM metrics cannot be parsed: {exc}.") from None
    if not values[WAITING] or not values[RUNNING]:
        return None
    kv_values = values[KV_CACHE] or values[KV_CACHE_BEFORE_0_10]
    return LoadSample(
        waiting=math.fsum(values[WAITING]),
        running=math.fsum(values[RUNNING]),
        kv_cache_usage=min(_mean(kv_values), 1.0) if kv_values else None,
    )


def _checked(name: str, value: float) -> float:
    if not math.isfinite(value) or value < 0:
        raise MetricsFormatError(f"The metric {name} has the value {value}, which is not a load.")
    return float(value)


def _mean(values: Iterable[float]) -> float:
    listed = list(values)
    return math.fsum(listed) / len(listed)
