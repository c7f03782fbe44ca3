"""The benchmark's fast backend (bench/fast_backend.py), as a real process over real HTTP: it answers chat
completions in the simulator's shapes, whole with usage or streamed with the usage chunk, and keeps the
connection open between requests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support.processes import ServerProcess, free_port

SCRIPT = Path(__file__).parent.parent / "bench" / "fast_backend.py"
MESSAGES = [{"role": "user", "content": "Write one sentence about gateways."}]


@pytest.fixture(scope="module")
def fast_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    port = free_port()
    log = tmp_path_factory.mktemp("fast") / "fast.log"
    with ServerProcess([sys.executable, str(SCRIPT), "--port", str(port)], port, log) as server:
        yield server


def _local_port(response: httpx.Response) -> int:
    """The client's side of the connection a response came on: equal ports mean a reused connection."""
    return int(response.extensions["network_stream"].get_extra_info("client_addr")[1])


def test_a_chat_completion_is_one_json_answer_with_usage_on_a_kept_connection(
    fast_backend: ServerProcess,
) -> None:
    """A non-streaming chat completion is a JSON answer with the assistant's text, a finish reason and a
    usage block that adds up; a second request goes over the same connection."""
    body = {"model": "simulator-model", "messages": MESSAGES}
    with httpx.Client(base_url=fast_backend.url) as client:
        first = client.post("/v1/chat/completions", json=body)
        second = client.post("/v1/chat/completions", json=body)
        assert _local_port(second) == _local_port(first)  # while the connection is still open
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/json"
    answer = first.json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["role"] == "assistant"
    assert answer["choices"][0]["message"]["content"]
    assert answer["choices"][0]["finish_reason"] == "stop"
    usage = answer["usage"]
    assert usage["completion_tokens"] == 20
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert second.json() == answer


def test_a_streamed_chat_completion_ends_with_the_usage_chunk_and_done(fast_backend: ServerProcess) -> None:
    """With ``"stream": true`` and ``include_usage`` the answer is a chunked event stream: the role, the
    content deltas, the finish reason, a chunk with no choices and the usage, then ``data: [DONE]``.
    Without ``include_usage`` the usage chunk is left out."""
    body = {
        "model": "simulator-model",
        "messages": MESSAGES,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.Client(base_url=fast_backend.url) as client:
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == "text/event-stream"
            assert response.headers["transfer-encoding"] == "chunked"
            lines = [line for line in response.iter_lines() if line]
        without_usage = client.post("/v1/chat/completions", json={**body, "stream_options": {}})
    assert lines[-1] == "data: [DONE]"
    chunks = [orjson.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks[:-1])
    assert len(text.split()) == 20
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 20
    assert without_usage.text.count("data: ") == len(lines) - 1
    assert b'"usage"' not in without_usage.content
