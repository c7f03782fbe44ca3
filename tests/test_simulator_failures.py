"""The simulator's injected failures (--failure-rate, --failure-type), each as a client sees it over real
HTTP, with httpx and with the official OpenAI SDK."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.support.simulators import simulator_client, vllm_metrics

CHAT = "/v1/chat/completions"
HELLO: dict[str, Any] = {"model": "simulator-model", "messages": [{"role": "user", "content": "Hello"}]}
EMBED: dict[str, Any] = {"model": "simulator-embed", "input": "Hello"}


def _sdk(http: httpx.Client) -> openai.OpenAI:
    """The OpenAI SDK pointed at the simulator, without retries so that each failure is seen once."""
    base_url = str(http.base_url).rstrip("/") + "/v1"
    return openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)


def _collect_events(response: httpx.Response, into: list[str]) -> None:
    """Append the stream's `data:` lines to ``into`` as they arrive, up to where the stream breaks."""
    for line in response.iter_lines():
        if line.startswith("data: "):
            into.append(line)


def test_rate_limit_is_a_429_with_retry_after(tmp_path: Path) -> None:
    """A rate_limit failure is a 429 with the --retry-after seconds in Retry-After and an OpenAI-shaped
    body, for completions and embeddings; the OpenAI SDK raises its RateLimitError."""
    with simulator_client(
        tmp_path, "--failure-rate", "1", "--failure-type", "rate_limit", "--retry-after", "7"
    ) as http:
        for path, body in ((CHAT, HELLO), ("/v1/embeddings", EMBED)):
            refused = http.post(path, json=body)
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "7"
            error = refused.json()["error"]
            assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
            assert "Try again in 7 s." in error["message"]
        with _sdk(http) as sdk, pytest.raises(openai.RateLimitError) as raised:
            sdk.chat.completions.create(model="simulator-model", messages=[{"role": "user", "content": "Hi"}])
    assert raised.value.status_code == 429


def test_context_length_is_a_400_in_vllm_words(tmp_path: Path) -> None:
    """A context_length failure is a 400 saying the request is one token over the context length, with
    the code OpenAI uses; the OpenAI SDK raises its BadRequestError with that code."""
    with simulator_client(tmp_path, "--failure-rate", "1", "--failure-type", "context_length") as http:
        refused = http.post(CHAT, json=HELLO)
        with _sdk(http) as sdk, pytest.raises(openai.BadRequestError) as raised:
            sdk.completions.create(model="simulator-model", prompt="Hi")
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["message"].startswith(
        "This model's maximum context length is 8192 tokens. However, you requested 8193 tokens "
        "(10 in the messages, 8183 in the completion)."
    )
    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error",
        "messages",
        "context_length_exceeded",
    )
    assert raised.value.code == "context_length_exceeded"


def test_a_hang_answers_nothing_until_the_client_gives_up(tmp_path: Path) -> None:
    """A hang sends nothing, not even a stream's head, until the client gives up; it holds no place in
    the engine, and the simulator goes on answering its health and metrics."""
    with simulator_client(tmp_path, "--failure-rate", "1", "--failure-type", "hang") as http:
        for path, body in ((CHAT, HELLO), (CHAT, {**HELLO, "stream": True}), ("/v1/embeddings", EMBED)):
            with pytest.raises(httpx.ReadTimeout):
                http.post(path, json=body, timeout=0.5)
        assert http.get("/health").status_code == 200
        scrape = vllm_metrics(http)
    assert scrape.value("vllm:num_requests_running") == 0
    assert scrape.value("vllm:num_requests_waiting") == 0
    assert scrape.value("vllm:prompt_tokens_total") == 0


def test_a_cut_stops_the_answer_half_way_and_closes_the_connection(tmp_path: Path) -> None:
    """A cut stream sends its role and half its tokens, then the connection closes without
    `data: [DONE]`; a cut whole answer (completion or embedding) closes before its Content-Length is
    reached. The engine counts the two completions as aborted after 10 of their 20 tokens each."""
    received: list[str] = []
    with simulator_client(tmp_path, "--failure-rate", "1", "--failure-type", "cut") as http:
        with http.stream("POST", CHAT, json={**HELLO, "stream": True}) as response:
            assert response.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                _collect_events(response, received)
        for path, body in ((CHAT, HELLO), ("/v1/embeddings", EMBED)):
            with pytest.raises(httpx.RemoteProtocolError, match="expected"):
                http.post(path, json=body)
        assert http.get("/health").status_code == 200
        scrape = vllm_metrics(http)
    assert len(received) == 11  # the role, then 10 of the 20 tokens
    assert "data: [DONE]" not in received
    assert scrape.value("vllm:request_success_total", finished_reason="abort") == 2
    assert scrape.value("vllm:generation_tokens_total") == 20
    assert scrape.value("vllm:num_requests_running") == 0


def test_several_failure_types_are_mixed_with_successes(tmp_path: Path) -> None:
    """With --failure-rate 0.5 and two failure types given as a comma list, requests succeed or fail
    in either way."""
    options = ("--failure-rate", "0.5", "--failure-type", "rate_limit,server_error", "--seed", "11")
    with simulator_client(tmp_path, *options) as http:
        statuses = [http.post(CHAT, json=HELLO).status_code for _ in range(40)]
    assert set(statuses) == {200, 429, 500}
