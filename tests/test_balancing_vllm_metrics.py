"""Reading a vLLM server's load from its `/metrics` text: current and older metric names, engines and
models, missing metrics and garbage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maas_gateway.balancing import LoadSample, MetricsFormatError, parse_vllm_load

MODEL = "meta-llama/Llama-3.1-8B-Instruct"

# Shaped like vLLM 0.10+ (V1 engine): an `engine` label, `kv_cache_usage_perc`, histograms, process metrics.
VLLM_CURRENT = f"""\
# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{{generation="0"}} 18342.0
python_gc_objects_collected_total{{generation="1"}} 3712.0
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 3.221225472e+09
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{engine="0",model_name="{MODEL}"}} 12.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{engine="0",model_name="{MODEL}"}} 3.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{{engine="0",model_name="{MODEL}"}} 0.4375
# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{{engine="0",model_name="{MODEL}"}} 182304.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{{engine="0",le="0.001",model_name="{MODEL}"}} 0.0
vllm:time_to_first_token_seconds_bucket{{engine="0",le="0.5",model_name="{MODEL}"}} 801.0
vllm:time_to_first_token_seconds_bucket{{engine="0",le="+Inf",model_name="{MODEL}"}} 912.0
vllm:time_to_first_token_seconds_count{{engine="0",model_name="{MODEL}"}} 912.0
vllm:time_to_first_token_seconds_sum{{engine="0",model_name="{MODEL}"}} 301.25
# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig
# TYPE vllm:cache_config_info gauge
vllm:cache_config_info{{block_size="16",cache_dtype="auto",engine="0",num_gpu_blocks="27034"}} 1.0
"""

# Shaped like vLLM before 0.10 (V0 engine): no `engine` label, `gpu_cache_usage_perc`, swapped requests.
VLLM_BEFORE_0_10 = f"""\
# HELP vllm:num_requests_running Number of requests currently running on GPU.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{model_name="{MODEL}"}} 5.0
# HELP vllm:num_requests_swapped Number of requests swapped to CPU.
# TYPE vllm:num_requests_swapped gauge
vllm:num_requests_swapped{{model_name="{MODEL}"}} 0.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{model_name="{MODEL}"}} 0.0
# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{{model_name="{MODEL}"}} 0.0921
# HELP vllm:cpu_cache_usage_perc CPU KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:cpu_cache_usage_perc gauge
vllm:cpu_cache_usage_perc{{model_name="{MODEL}"}} 0.0
"""


def test_current_vllm_metrics_give_waiting_running_and_kv_cache_usage() -> None:
    """vLLM 0.10+ text, among process metrics, counters and histograms, gives its three gauges."""
    assert parse_vllm_load(VLLM_CURRENT) == LoadSample(waiting=3, running=12, kv_cache_usage=0.4375)
    assert parse_vllm_load(VLLM_CURRENT, MODEL) == LoadSample(waiting=3, running=12, kv_cache_usage=0.4375)


def test_older_vllm_metrics_use_gpu_cache_usage_perc() -> None:
    """Before 0.10 the KV cache gauge was `vllm:gpu_cache_usage_perc`; it is read the same way."""
    assert parse_vllm_load(VLLM_BEFORE_0_10, MODEL) == LoadSample(waiting=0, running=5, kv_cache_usage=0.0921)


def test_when_both_cache_names_are_reported_the_newer_one_wins() -> None:
    """A server in the transition reports both names; `kv_cache_usage_perc` is the one read."""
    both = VLLM_CURRENT + f'vllm:gpu_cache_usage_perc{{engine="0",model_name="{MODEL}"}} 0.99\n'
    sample = parse_vllm_load(both)
    assert sample is not None
    assert sample.kv_cache_usage == 0.4375


def test_several_engines_add_their_queues_and_average_their_cache_use() -> None:
    """A data-parallel server reports one series per engine: queues add up, cache use is the mean."""
    text = "\n".join(
        f'vllm:{name}{{engine="{engine}",model_name="m"}} {value}'
        for engine, (waiting, running, kv) in enumerate([(1, 10, 0.5), (3, 6, 0.25)])
        for name, value in (
            ("num_requests_waiting", waiting),
            ("num_requests_running", running),
            ("kv_cache_usage_perc", kv),
        )
    )
    assert parse_vllm_load(text) == LoadSample(waiting=4, running=16, kv_cache_usage=0.375)


def test_a_named_model_reads_only_its_own_series() -> None:
    """On a server that reports several models, only the named model's series count; a series without a
    `model_name` label counts for any model; a model the server does not report gives None."""
    text = (
        'vllm:num_requests_waiting{model_name="chat"} 2\n'
        'vllm:num_requests_waiting{model_name="code"} 9\n'
        'vllm:num_requests_running{model_name="chat"} 4\n'
        'vllm:num_requests_running{model_name="code"} 20\n'
        "vllm:kv_cache_usage_perc 0.5\n"
    )
    assert parse_vllm_load(text, "chat") == LoadSample(waiting=2, running=4, kv_cache_usage=0.5)
    assert parse_vllm_load(text) == LoadSample(waiting=11, running=24, kv_cache_usage=0.5)
    assert parse_vllm_load(text, "embed") is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "# HELP maas_requests_total Requests.\n# TYPE maas_requests_total counter\nmaas_requests_total 5\n",
        'vllm:num_requests_waiting{model_name="m"} 1\n',
        "vllm:num_requests_running 1\n",
        "<html><body>Not found</body></html>",
        # Names that merely start like the gauges are other metrics.
        'vllm:num_requests_waiting_by_reason{reason="capacity"} 7\nvllm:num_requests_running_max 3\n',
    ],
)
def test_text_without_both_queue_gauges_gives_none(text: str) -> None:
    """No vLLM metrics, or only one of the two queue gauges: there is no load to report."""
    assert parse_vllm_load(text) is None


def test_a_missing_cache_gauge_leaves_the_cache_usage_unknown() -> None:
    """Queue gauges without a KV cache gauge give a sample whose cache usage is None."""
    text = "vllm:num_requests_waiting 0\nvllm:num_requests_running 2\n"
    assert parse_vllm_load(text) == LoadSample(waiting=0, running=2, kv_cache_usage=None)


def test_cache_usage_above_one_is_read_as_full() -> None:
    """The cache use is a share: a value above 1 (a server's rounding) counts as a full cache."""
    text = "vllm:num_requests_waiting 0\nvllm:num_requests_running 2\nvllm:kv_cache_usage_perc 1.02\n"
    sample = parse_vllm_load(text)
    assert sample is not None
    assert sample.kv_cache_usage == 1.0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('vllm:num_requests_waiting{model_name="m"} many', "cannot be parsed"),
        ('vllm:num_requests_waiting{model_name="m" 3', "cannot be parsed"),
        ("vllm:num_requests_waiting NaN", "has the value nan, which is not a load"),
        ("vllm:num_requests_running -2", "has the value -2, which is not a load"),
        ("vllm:kv_cache_usage_perc +Inf", "has the value inf"),
    ],
)
def test_a_malformed_gauge_line_is_a_clear_error(line: str, message: str) -> None:
    """A broken line of one of the gauges, or an impossible value, raises `MetricsFormatError` saying so."""
    with pytest.raises(MetricsFormatError, match=message):
        parse_vllm_load(VLLM_CURRENT + line + "\n")


def test_garbage_in_other_metrics_is_not_read() -> None:
    """Lines of other metrics are skipped unread, so garbage there does not hide the load."""
    text = "this is { not prometheus\nvllm:e2e_request_latency_seconds_bucket{le=oops} x\n" + VLLM_CURRENT
    assert parse_vllm_load(text) == LoadSample(waiting=3, running=12, kv_cache_usage=0.4375)


_FRAGMENTS = st.sampled_from(
    [
        "vllm:num_requests_waiting",
        "vllm:num_requests_running",
        "vllm:kv_cache_usage_perc",
        "vllm:gpu_cache_usage_perc",
        "{",
        "}",
        '="',
        '"',
        ",",
        " ",
        "\t",
        "\n",
        "# TYPE ",
        "# HELP ",
        "1",
        "-",
        ".5",
        "e9",
        "NaN",
        "model_name",
        "\\",
        "\x00",
        "é",
    ]
)


@given(st.one_of(st.text(), st.lists(_FRAGMENTS, max_size=40).map("".join)))
def test_any_text_gives_a_sample_none_or_a_metrics_format_error(text: str) -> None:
    """Whatever a backend answers, reading it never raises anything but `MetricsFormatError`."""
    try:
        sample = parse_vllm_load(text, "m")
    except MetricsFormatError:
        return
    if sample is not None:
        assert sample.waiting >= 0
        assert sample.running >= 0
        assert sample.kv_cache_usage is None or 0 <= sample.kv_cache_usage <= 1
