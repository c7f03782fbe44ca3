"""The simulator as a member of a vLLM fleet, over real HTTP against `maas sim` processes: its queue, its
KV-cache model, its vLLM metrics, its health switch and its context length."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.simulators import simulator_client, vllm_metrics, wait_for_metrics

CHAT = "/v1/chat/completions"
HELLO: dict[str, Any] = {"model": "simulator-model", "messages": [{"role": "user", "content": "Hello"}]}


def _events(response: httpx.Response) -> Iterator[str]:
    """The `data:` payloads of an SSE response, as they arrive."""
    assert response.status_code == 200
    return (line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: "))


def _stream(http: httpx.Client, stack: ExitStack, body: dict[str, Any]) -> Iterator[str]:
    """Start a stream whose head has arrived; the simulator has queued or started it by then."""
    return _events(stack.enter_context(http.stream("POST", CHAT, json={**body, "stream": True})))


def test_max_num_seqs_runs_one_stream_and_queues_the_others_first_come_first_served(tmp_path: Path) -> None:
    """With --max-num-seqs 1 and a slow --itl, of three streams one runs and two wait; the second to
    arrive starts while the third still waits; the wait counts in the time to first token; at the end
    nothing runs or waits and all three finished."""
    body = {**HELLO, "max_tokens": 15}
    with simulator_client(tmp_path, "--max-num-seqs", "1", "--itl", "0.1") as http:
        with ExitStack() as stack:
            first, second, third = (_stream(http, stack, body) for _ in range(3))
            loaded = vllm_metrics(http)
            assert loaded.value("vllm:num_requests_running", model_name="simulator-model") == 1
            assert loaded.value("vllm:num_requests_waiting", model_name="simulator-model") == 2
            next(second)  # arrives once the first has finished and the second has started
            assert vllm_metrics(http).value("vllm:num_requests_waiting") == 1  # the third still waits
            for events in (first, second, third):
                assert list(events)[-1] == "[DONE]"
        done = vllm_metrics(http)
    assert done.value("vllm:num_requests_running") == 0
    assert done.value("vllm:num_requests_waiting") == 0
    assert done.value("vllm:request_success_total", finished_reason="length") == 3
    # The two that waited did so for at least the first stream's 14 gaps of 0.1 s.
    assert done.value("vllm:time_to_first_token_seconds_count") == 3
    assert done.value("vllm:time_to_first_token_seconds_bucket", le="1.0") == 1


def test_kv_cache_usage_grows_while_a_stream_runs_and_returns_to_zero(tmp_path: Path) -> None:
    """With --kv-cache-tokens 1000, a 40-token stream after a 10-token prompt holds at least its prompt
    and the tokens received so far and at most all 50, more late in the stream than early; afterwards
    nothing, and the counters hold its 10 prompt and 40 generated tokens."""
    with simulator_client(tmp_path, "--kv-cache-tokens", "1000", "--itl", "0.05") as http:
        with ExitStack() as stack:
            events = _stream(http, stack, {**HELLO, "max_tokens": 40})
            next(events), next(events)  # the role, then the first token
            early = vllm_metrics(http).value("vllm:kv_cache_usage_perc")
            for _ in range(29):
                next(events)
            late = vllm_metrics(http)
            assert list(events)[-1] == "[DONE]"
        after = vllm_metrics(http)
    assert 11 / 1000 <= early <= 50 / 1000
    assert 40 / 1000 <= late.value("vllm:kv_cache_usage_perc") <= 50 / 1000
    assert late.value("vllm:gpu_cache_usage_perc") == late.value("vllm:kv_cache_usage_perc")
    assert early < late.value("vllm:kv_cache_usage_perc")
    assert after.value("vllm:kv_cache_usage_perc") == 0
    assert after.value("vllm:prompt_tokens_total") == 10
    assert after.value("vllm:generation_tokens_total") == 40


def test_a_request_waits_while_its_prompt_does_not_fit_in_the_kv_cache(tmp_path: Path) -> None:
    """With --kv-cache-tokens 30 and no --max-num-seqs, a second 20-token prompt waits while a first
    one runs (20 + 20 > 30), and runs once the first has finished."""
    body = {**HELLO, "messages": [{"role": "user", "content": "x" * 80}], "max_tokens": 5}
    with simulator_client(tmp_path, "--kv-cache-tokens", "30", "--itl", "0.1") as http, ExitStack() as stack:
        first = _stream(http, stack, body)
        next(first)
        second = _stream(http, stack, body)
        full = vllm_metrics(http)
        assert (full.value("vllm:num_requests_running"), full.value("vllm:num_requests_waiting")) == (1, 1)
        assert full.value("vllm:kv_cache_usage_perc") >= 21 / 30
        assert list(first)[-1] == list(second)[-1] == "[DONE]"
        assert vllm_metrics(http).value("vllm:request_success_total", finished_reason="length") == 2


def test_a_client_that_gives_up_leaves_the_queue(tmp_path: Path) -> None:
    """Requests waiting behind --max-num-seqs leave the queue when their clients close the connection,
    whole or streamed, and count as aborted; the running stream goes on."""
    with (
        simulator_client(tmp_path, "--max-num-seqs", "1", "--itl", "0.1") as http,
        http.stream("POST", CHAT, json={**HELLO, "max_tokens": 30, "stream": True}) as running,
    ):
        events = _events(running)
        next(events)
        with pytest.raises(httpx.ReadTimeout):
            http.post(CHAT, json=HELLO, timeout=0.5)
        with http.stream("POST", CHAT, json={**HELLO, "stream": True}) as waiting:
            assert waiting.status_code == 200  # its head; it leaves without reading a token
        scrape = wait_for_metrics(http, lambda m: m.value("vllm:num_requests_waiting") == 0)
        assert scrape.value("vllm:request_success_total", finished_reason="abort") == 2
        assert scrape.value("vllm:num_requests_running") == 1
        assert list(events)[-1] == "[DONE]"


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A client for a simulator of this module's own, with the default options (instant, unbounded)."""
    with simulator_client(tmp_path_factory.mktemp("plain")) as http:
        yield http


def test_an_instant_simulator_counts_whole_answers_and_streams(plain: httpx.Client) -> None:
    """Without delays or bounds, whole answers and streams are counted in the token counters, the
    finished requests and the time to first token, and nothing is left running."""
    before = vllm_metrics(plain)
    assert plain.post(CHAT, json=HELLO).status_code == 200
    assert plain.post(CHAT, json={**HELLO, "max_tokens": 3}).status_code == 200
    with plain.stream("POST", CHAT, json={**HELLO, "stream": True}) as response:
        assert list(_events(response))[-1] == "[DONE]"
    after = vllm_metrics(plain)

    def grew(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert grew("vllm:prompt_tokens_total") == 30
    assert grew("vllm:generation_tokens_total") == 43
    assert grew("vllm:request_success_total", finished_reason="stop") == 2
    assert grew("vllm:request_success_total", finished_reason="length") == 1
    assert grew("vllm:time_to_first_token_seconds_count") == 3
    assert (after.value("vllm:num_requests_running"), after.value("vllm:kv_cache_usage_perc")) == (0, 0)


def test_health_and_readiness_can_be_switched_off_and_on(plain: httpx.Client) -> None:
    """`POST /sim/health {"healthy": false}` makes /health and /ready answer 503 (completions still
    work); `{"healthy": true}` makes them 200 again; any other body is a 400."""
    assert [plain.get(path).status_code for path in ("/health", "/ready")] == [200, 200]
    assert plain.post("/sim/health", json={"healthy": False}).json() == {"healthy": False}
    assert [plain.get(path).status_code for path in ("/health", "/ready")] == [503, 503]
    assert plain.post(CHAT, json=HELLO).status_code == 200
    assert plain.post("/sim/health", json={"healthy": True}).status_code == 200
    assert [plain.get(path).status_code for path in ("/health", "/ready")] == [200, 200]
    for bad in ({"healthy": "no"}, {}, [False]):
        refused = plain.post("/sim/health", json=bad)
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "invalid_value"


def test_max_model_len_refuses_what_does_not_fit_as_vllm_does(tmp_path: Path) -> None:
    """With --max-model-len 100: a 100-token prompt with max_tokens 1 is a 400 in vLLM's words; a
    100-token prompt alone too (it leaves no room); a 90-token prompt without max_tokens gets the 10
    tokens left and "length"; /v1/models reports the length."""

    def prompt(tokens: int) -> dict[str, Any]:
        return {**HELLO, "messages": [{"role": "user", "content": "x" * 4 * tokens}]}

    with simulator_client(tmp_path, "--max-model-len", "100") as http:
        over = http.post(CHAT, json={**prompt(100), "max_tokens": 1})
        full = http.post(CHAT, json=prompt(100))
        fits = http.post(CHAT, json=prompt(90))
        text = http.post("/v1/completions", json={"model": "simulator-model", "prompt": "x" * 404})
        listed = http.get("/v1/models").json()["data"]
    assert over.status_code == 400
    assert over.json()["error"] == {
        "message": "This model's maximum context length is 100 tokens. However, you requested 101 tokens "
        "(100 in the messages, 1 in the completion). Please reduce the length of the messages or completion.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
    assert full.status_code == 400
    assert "you requested 100 tokens in the messages" in full.json()["error"]["message"]
    assert fits.status_code == 200
    assert fits.json()["usage"] == {"prompt_tokens": 90, "completion_tokens": 10, "total_tokens": 100}
    assert fits.json()["choices"][0]["finish_reason"] == "length"
    assert (text.status_code, text.json()["error"]["param"]) == (400, "prompt")
    assert {model["max_model_len"] for model in listed} == {100}
