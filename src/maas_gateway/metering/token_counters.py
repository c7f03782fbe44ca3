"""A vLLM server's own token counters, read from the Prometheus text of its ``/metrics``.

``vllm:prompt_tokens_total`` and ``vllm:generation_tokens_total`` count the tokens the server processed
since it started, one series per ``model_name`` (and engine, added up here). Only their sample lines are
picked out and parsed, as ``balancing/vllm_metrics.py`` does for the load gauges: a vLLM answer is tens of
kilobytes of histograms, of which these are a few lines.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from maas_gateway.balancing.vllm_metrics import MetricsFormatError

__all__ = ["GENERATION_TOKENS", "PROMPT_TOKENS", "TokenCounters", "parse_token_counters"]

PROMPT_TOKENS = "vllm:prompt_tokens_total"
GENERATION_TOKENS = "vllm:generation_tokens_total"

_SAMPLE_LINE = re.compile(r"^vllm:(?:prompt|generation)_tokens_total[{ \t].*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class TokenCounters:
    """One model's counters on one server: tokens processed since the server started."""

    prompt_tokens: float
    generation_tokens: float


def parse_token_counters(text: str) -> dict[str, TokenCounters]:
    """The counters in ``text`` by ``model_name`` ('' for series without that label).

    A model appears only when the server reports both counters for it. Raises ``MetricsFormatError``
    when a line of these counters is malformed or holds a negative or infinite value.
    """
    relevant = "\n".join(match.group(0) for match in _SAMPLE_LINE.finditer(text))
    sums: dict[str, list[float]] = {}
    seen: dict[str, set[str]] = {}
    try:
        for family in text_string_to_metric_families(relevant):
            for sample in family.samples:
                if sample.name not in (PROMPT_TOKENS, GENERATION_TOKENS):
                    continue
                if not math.isfinite(sample.value) or sample.value < 0:
                    raise MetricsFormatError(
                        f"The metric {sample.name} has the value {sample.value}, which is not a count."
                    )
                model = sample.labels.get("model_name", "")
                totals = sums.setdefault(model, [0.0, 0.0])
                totals[0 if sample.name == PROMPT_TOKENS else 1] += sample.value
                seen.setdefault(model, set()).add(sample.name)
    except MetricsFormatError:
        raise
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        # The parser's errors on malformed text are not one documented type; these are the ones it raises.
        raise MetricsFormatError(f"The vLLM token counters cannot be parsed: {exc}.") from None
    return {
        model: TokenCounters(prompt, generation)
        for model, (prompt, generation) in sums.items()
        if len(seen[model]) == 2
    }
