"""The simulator's smaller parts in-process: latency jitter, metric exposition, failure draws, the
context-length rule and its message."""

from __future__ import annotations

import random

import pytest

from maas_gateway.simulator import SimulatorSettings
from maas_gateway.simulator.engine import Engine
from maas_gateway.simulator.failures import Failures, context_length_message
from maas_gateway.simulator.generation import completion_tokens
from maas_gateway.simulator.latency import Latency
from maas_gateway.simulator.metrics import SimulatorMetrics
from tests.support.simulators import VllmMetrics


def _draws(latency: Latency, count: int = 50) -> list[tuple[float, float]]:
    return [(latency.time_to_first_token(), latency.inter_token()) for _ in range(count)]


def test_jitter_is_reproducible_with_a_seed() -> None:
    """Two latency models with the same seed draw the same delays, which vary around their means."""
    first = _draws(Latency(0.2, 0.05, 0.02, 0.005, random.Random(7)))
    again = _draws(Latency(0.2, 0.05, 0.02, 0.005, random.Random(7)))
    other = _draws(Latency(0.2, 0.05, 0.02, 0.005, random.Random(8)))
    assert first == again
    assert first != other
    assert len({ttft for ttft, _ in first}) == len(first)
    assert sum(ttft for ttft, _ in first) / len(first) == pytest.approx(0.2, abs=0.03)


def test_jitter_is_clipped_at_zero() -> None:
    """A spread much wider than the mean never gives a negative delay; some delays are exactly 0."""
    draws = [delay for pair in _draws(Latency(0.01, 1.0, 0.01, 1.0, random.Random(1)), 200) for delay in pair]
    assert min(draws) == 0.0
    assert all(delay >= 0 for delay in draws)


def test_without_jitter_the_means_are_exact_and_nothing_is_drawn() -> None:
    """With no spread the delays are the means, and the random source is left as it was (so a seeded
    simulator's random mode and failures are what they were before jitter existed)."""
    rng = random.Random(5)
    state = rng.getstate()
    latency = Latency(0.3, 0.0, 0.1, 0.0, rng)
    assert set(_draws(latency, 5)) == {(0.3, 0.1)}
    assert rng.getstate() == state
    assert not latency.instant
    assert Latency(0, 0, 0, 0, rng).instant


def test_metrics_expose_the_engine_under_vllm_names() -> None:
    """The metrics carry vLLM's names and a model_name label: running and waiting requests, KV-cache
    usage under its current and its older name, token counters, finished requests by reason and the
    time to first token."""
    engine = Engine(max_num_seqs=1, kv_cache_tokens=200)
    metrics = SimulatorMetrics(engine, "my-model")
    running, waiting = engine.arrive(30), engine.arrive(12)
    engine.submit(running)
    engine.submit(waiting)
    engine.emit(running, 5)
    metrics.observe_time_to_first_token(0.03)
    scrape = VllmMetrics(metrics.render().decode())
    model = {"model_name": "my-model"}
    assert scrape.value("vllm:num_requests_running", **model) == 1
    assert scrape.value("vllm:num_requests_waiting", **model) == 1
    assert scrape.value("vllm:kv_cache_usage_perc", **model) == pytest.approx(35 / 200)
    assert scrape.value("vllm:gpu_cache_usage_perc", **model) == pytest.approx(35 / 200)
    assert scrape.value("vllm:prompt_tokens_total", **model) == 30
    assert scrape.value("vllm:generation_tokens_total", **model) == 5
    assert scrape.value("vllm:request_success_total", finished_reason="stop") == 0
    assert scrape.value("vllm:time_to_first_token_seconds_bucket", le="0.02") == 0
    assert scrape.value("vllm:time_to_first_token_seconds_bucket", le="0.04") == 1
    assert scrape.value("vllm:time_to_first_token_seconds_count") == 1
    engine.finish(running, "length")
    scrape = VllmMetrics(metrics.render().decode())
    assert scrape.value("vllm:request_success_total", finished_reason="length") == 1
    assert scrape.value("vllm:num_requests_running") == 1
    assert scrape.value("vllm:num_requests_waiting") == 0


def test_two_simulators_in_one_process_keep_their_metrics_apart() -> None:
    """Each simulator's metrics live in a registry of its own, so two in one process neither clash
    nor see each other's values."""
    busy, idle = Engine(), Engine()
    busy_metrics, idle_metrics = SimulatorMetrics(busy, "busy"), SimulatorMetrics(idle, "idle")
    busy.submit(busy.arrive(10))
    assert VllmMetrics(busy_metrics.render().decode()).value("vllm:num_requests_running") == 1
    idle_scrape = VllmMetrics(idle_metrics.render().decode())
    assert idle_scrape.value("vllm:num_requests_running", model_name="idle") == 0
    assert {labels["model_name"] for labels in idle_scrape.labels("vllm:prompt_tokens_total")} == {"idle"}


def test_failure_types_are_drawn_from_the_seeded_random_source() -> None:
    """With several failure types each failing request gets one of them, in an order the seed fixes;
    without a failure rate nothing fails and nothing is drawn."""

    def draws(seed: int) -> list[str | None]:
        settings = SimulatorSettings(
            failure_rate=0.5, failure_types=("rate_limit", "cut"), rng=random.Random(seed)
        )
        failures = Failures(settings)
        return [failures.draw() for _ in range(60)]

    first = draws(3)
    assert first == draws(3)
    assert set(first) == {None, "rate_limit", "cut"}
    rng = random.Random(3)
    state = rng.getstate()
    never = Failures(SimulatorSettings(rng=rng))
    assert [never.draw() for _ in range(10)] == [None] * 10
    assert rng.getstate() == state


def test_context_length_messages_are_worded_as_vllm_words_them() -> None:
    """The refusal of a too long request names the context length and the tokens asked for."""
    assert context_length_message(100, 90, 20) == (
        "This model's maximum context length is 100 tokens. However, you requested 110 tokens "
        "(90 in the messages, 20 in the completion). Please reduce the length of the messages or "
        "completion."
    )
    assert context_length_message(100, 120, None) == (
        "This model's maximum context length is 100 tokens. However, you requested 120 tokens in the "
        "messages. Please reduce the length of the messages."
    )


def test_a_completion_without_max_tokens_stops_where_the_context_ends() -> None:
    """Without max_tokens, a completion longer than the room the prompt leaves is cut to that room and
    finishes for "length"; a shorter one is left alone."""
    settings = SimulatorSettings()
    tokens, finish = completion_tokens(settings, "Hello", None, room=5)
    assert (len(tokens), finish) == (5, "length")
    assert not tokens[-1].endswith(" ")
    assert completion_tokens(settings, "Hello", None, room=500)[1] == "stop"
