"""The vLLM-compatible simulator, exercised over real HTTP against `maas sim` processes."""

from __future__ import annotations

import base64
import json
import math
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import ServerProcess
from tests.support.simulators import simulator_client

CHAT = "/v1/chat/completions"
HELLO: dict[str, Any] = {"model": "simulator-model", "messages": [{"role": "user", "content": "Hello"}]}


@pytest.fixture(scope="module")
def client(simulator: ServerProcess) -> Iterator[httpx.Client]:
    """An HTTP client for the session simulator (fixed mode, no latency)."""
    with httpx.Client(base_url=simulator.url, timeout=10) as http:
        yield http


def _post(client: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def _stream(client: httpx.Client, path: str, body: dict[str, Any]) -> list[str]:
    """The `data:` payloads of an SSE response, in order."""
    with client.stream("POST", path, json={**body, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]


def _assert_openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status
    error: dict[str, Any] = response.json()["error"]
    assert all(isinstance(error[field], str) and error[field] for field in ("message", "type", "code"))
    return error


def test_chat_completion_has_the_openai_shape(client: httpx.Client) -> None:
    """A chat completion carries id, object, created, model, one assistant message, finish_reason, usage."""
    before = int(time.time())
    body = _post(client, CHAT, HELLO)
    assert body["id"].startswith("chatcmpl-")
    assert body["object"] == "chat.completion"
    assert before - 1 <= body["created"] <= time.time() + 1
    assert body["model"] == "simulator-model"
    (choice,) = body["choices"]
    assert choice["index"] == 0
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str)
    assert choice["message"]["content"]
    assert choice["finish_reason"] == "stop"
    assert set(body["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert _post(client, CHAT, HELLO)["id"] != body["id"]


def test_fixed_mode_short_prompt_costs_thirty_tokens(client: httpx.Client) -> None:
    """In fixed mode "Hello" costs 10 prompt + 20 completion tokens, and the text has 20 tokens."""
    body = _post(client, CHAT, HELLO)
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}
    assert len(body["choices"][0]["message"]["content"].split()) == 20


def test_long_prompt_counts_four_characters_per_token(client: httpx.Client) -> None:
    """A prompt longer than the minimum is counted at about four characters a token."""
    body = _post(client, CHAT, {**HELLO, "messages": [{"role": "user", "content": "x" * 400}]})
    assert body["usage"]["prompt_tokens"] == 100


@pytest.mark.parametrize("max_tokens", [1, 5, 37])
def test_max_tokens_gives_exactly_that_many_tokens(client: httpx.Client, max_tokens: int) -> None:
    """With max_tokens=N the completion has exactly N tokens and stops for "length"."""
    body = _post(client, CHAT, {**HELLO, "max_tokens": max_tokens})
    assert body["usage"]["completion_tokens"] == max_tokens
    assert len(body["choices"][0]["message"]["content"].split()) == max_tokens
    assert body["choices"][0]["finish_reason"] == "length"


@pytest.mark.parametrize("max_tokens", [0, -3, "ten"])
def test_invalid_max_tokens_is_rejected(client: httpx.Client, max_tokens: object) -> None:
    """A max_tokens that is not a positive integer gets a 400 in OpenAI error shape."""
    _assert_openai_error(client.post(CHAT, json={**HELLO, "max_tokens": max_tokens}), 400)


def test_text_completion_has_the_openai_shape(client: httpx.Client) -> None:
    """/v1/completions answers a text_completion whose choice carries `text`."""
    body = _post(client, "/v1/completions", {"model": "simulator-model", "prompt": "Hello", "max_tokens": 7})
    assert body["id"].startswith("cmpl-")
    assert body["object"] == "text_completion"
    (choice,) = body["choices"]
    assert len(choice["text"].split()) == 7
    assert "message" not in choice
    assert choice["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 7, "total_tokens": 17}


def test_chat_stream_matches_the_non_streamed_answer(client: httpx.Client) -> None:
    """A streamed chat answer is chunks of deltas ending in [DONE] whose text equals the plain answer."""
    data = _stream(client, CHAT, HELLO)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(item) for item in data[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[0]["id"].startswith("chatcmpl-")
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks)
    assert text == _post(client, CHAT, HELLO)["choices"][0]["message"]["content"]
    assert [chunk["choices"][0]["finish_reason"] for chunk in chunks][-1] == "stop"
    assert all(chunk["choices"][0]["finish_reason"] is None for chunk in chunks[:-1])
    assert all("usage" not in chunk and chunk["choices"] for chunk in chunks)


@pytest.mark.parametrize("options", [None, {"include_usage": False}])
def test_stream_has_no_usage_chunk_unless_asked(client: httpx.Client, options: dict[str, Any] | None) -> None:
    """Without stream_options.include_usage=true no chunk reports usage or has empty choices."""
    body = {**HELLO, "stream_options": options} if options is not None else HELLO
    chunks = [json.loads(item) for item in _stream(client, CHAT, body)[:-1]]
    assert all(chunk["choices"] and chunk.get("usage") is None for chunk in chunks)


@pytest.mark.parametrize("max_tokens", [None, 4])
def test_stream_usage_chunk_equals_plain_usage(client: httpx.Client, max_tokens: int | None) -> None:
    """With include_usage the last chunk before [DONE] has empty choices and the non-streamed usage."""
    body = {**HELLO, "max_tokens": max_tokens} if max_tokens else HELLO
    data = _stream(client, CHAT, {**body, "stream_options": {"include_usage": True}})
    assert data[-1] == "[DONE]"
    chunks = [json.loads(item) for item in data[:-1]]
    usage_chunks = [chunk for chunk in chunks if chunk["choices"] == []]
    assert usage_chunks == [chunks[-1]]
    assert chunks[-1]["usage"] == _post(client, CHAT, body)["usage"]
    assert all("usage" not in chunk for chunk in chunks[:-1])


def test_completion_stream_carries_text_chunks(client: httpx.Client) -> None:
    """A streamed text completion is text_completion chunks whose texts join to the plain answer."""
    body = {"model": "simulator-model", "prompt": "Hello", "max_tokens": 6}
    data = _stream(client, "/v1/completions", {**body, "stream_options": {"include_usage": True}})
    assert data[-1] == "[DONE]"
    chunks = [json.loads(item) for item in data[:-1]]
    assert all(chunk["object"] == "text_completion" for chunk in chunks)
    text = "".join(chunk["choices"][0]["text"] for chunk in chunks if chunk["choices"])
    plain = _post(client, "/v1/completions", body)
    assert text == plain["choices"][0]["text"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"] == plain["usage"]


def _embed(client: httpx.Client, value: object, **extra: Any) -> list[dict[str, Any]]:
    body = _post(client, "/v1/embeddings", {"model": "simulator-embed", "input": value, **extra})
    assert body["object"] == "list"
    assert body["model"] == "simulator-embed"
    assert body["usage"]["prompt_tokens"] >= 1
    items: list[dict[str, Any]] = body["data"]
    return items


def test_embeddings_are_deterministic_unit_vectors(client: httpx.Client) -> None:
    """The same input gets the same 384-dimension unit vector; a different input gets another."""
    (first,) = _embed(client, "the quick brown fox")
    (again,) = _embed(client, "the quick brown fox")
    (other,) = _embed(client, "the lazy dog")
    assert first["object"] == "embedding"
    assert first["index"] == 0
    vector = first["embedding"]
    assert len(vector) == 384
    assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0, rel_tol=1e-9)
    assert again["embedding"] == vector
    assert other["embedding"] != vector


def test_embedding_list_input_gives_one_item_per_input(client: httpx.Client) -> None:
    """A list input gets one embedding per string, indexed in order, each equal to its single embedding."""
    texts = ["alpha", "beta", "gamma"]
    items = _embed(client, texts)
    assert [item["index"] for item in items] == [0, 1, 2]
    for text, item in zip(texts, items, strict=True):
        assert item["embedding"] == _embed(client, text)[0]["embedding"]


def test_embedding_base64_decodes_to_the_float_vector(client: httpx.Client) -> None:
    """encoding_format=base64 gives little-endian float32s equal to the float vector."""
    (encoded,) = _embed(client, "vector me", encoding_format="base64")
    (plain,) = _embed(client, "vector me", encoding_format="float")
    decoded = struct.unpack("<384f", base64.b64decode(encoded["embedding"]))
    assert decoded == pytest.approx(plain["embedding"], abs=1e-6)


def test_embedding_rejects_unknown_encoding(client: httpx.Client) -> None:
    """An encoding_format other than float or base64 gets a 400."""
    body = {"model": "simulator-embed", "input": "x", "encoding_format": "hex"}
    _assert_openai_error(client.post("/v1/embeddings", json=body), 400)


def test_models_lists_chat_and_embedding_models(client: httpx.Client) -> None:
    """/v1/models lists simulator-model and simulator-embed as model objects."""
    response = client.get("/v1/models")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert {item["id"] for item in body["data"]} == {"simulator-model", "simulator-embed"}
    assert all(item["object"] == "model" for item in body["data"])


def test_health_answers_200(client: httpx.Client) -> None:
    """/health answers 200."""
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize(
    ("path", "model"),
    [(CHAT, "no-such-model"), ("/v1/completions", "no-such-model"), ("/v1/embeddings", "simulator-model")],
)
def test_unknown_model_is_404_in_openai_shape(client: httpx.Client, path: str, model: str) -> None:
    """A model the endpoint does not serve gets 404 with an OpenAI error body."""
    body = {**HELLO, "model": model, "prompt": "x", "input": "x"}
    error = _assert_openai_error(client.post(path, json=body), 404)
    assert error["code"] == "model_not_found"
    assert model in error["message"]


@pytest.mark.parametrize("content", [b"{not json", b"", b"[1, 2]"])
def test_malformed_body_is_400(client: httpx.Client, content: bytes) -> None:
    """A body that is not a JSON object gets 400 in OpenAI error shape."""
    response = client.post(CHAT, content=content, headers={"content-type": "application/json"})
    assert _assert_openai_error(response, 400)["type"] == "invalid_request_error"


def test_echo_mode_returns_the_last_user_message(tmp_path: Path) -> None:
    """Echo mode answers the last user message (cut by max_tokens); a completion echoes its prompt."""
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": "say these five words back"},
    ]
    with simulator_client(tmp_path, "--mode", "echo") as http:
        body = _post(http, CHAT, {"model": "simulator-model", "messages": messages})
        cut = _post(http, CHAT, {"model": "simulator-model", "messages": messages, "max_tokens": 2})
        completion = _post(http, "/v1/completions", {"model": "simulator-model", "prompt": "echo me"})
    assert body["choices"][0]["message"]["content"] == "say these five words back"
    assert body["usage"]["completion_tokens"] == 5
    assert body["choices"][0]["finish_reason"] == "stop"
    assert cut["choices"][0]["message"]["content"] == "say these"
    assert cut["choices"][0]["finish_reason"] == "length"
    assert completion["choices"][0]["text"] == "echo me"


def test_random_mode_lengths_are_between_one_and_max_tokens(tmp_path: Path) -> None:
    """In random mode completion lengths vary within 1..max_tokens, and "length" means max_tokens."""
    with simulator_client(tmp_path, "--mode", "random", "--seed", "7") as http:
        bodies = [_post(http, CHAT, {**HELLO, "max_tokens": 6}) for _ in range(30)]
    lengths = [body["usage"]["completion_tokens"] for body in bodies]
    assert all(1 <= count <= 6 for count in lengths)
    assert len(set(lengths)) >= 3
    for body, count in zip(bodies, lengths, strict=True):
        assert len(body["choices"][0]["message"]["content"].split()) == count
        assert body["choices"][0]["finish_reason"] == ("length" if count == 6 else "stop")


def test_ttft_delays_the_first_streamed_chunk(tmp_path: Path) -> None:
    """With --ttft 0.3 the first streamed chunk arrives no earlier than about 0.3 s after the request."""
    with simulator_client(tmp_path, "--ttft", "0.3") as http:
        started = time.monotonic()
        with http.stream("POST", CHAT, json={**HELLO, "stream": True}) as response:
            lines = (line for line in response.iter_lines() if line.startswith("data: "))
            first = next(lines)
            elapsed = time.monotonic() - started
            rest = list(lines)
    assert first != "data: [DONE]"
    assert rest[-1] == "data: [DONE]"
    assert elapsed >= 0.25


def test_itl_spaces_the_streamed_tokens(tmp_path: Path) -> None:
    """With --itl 0.1 a five-token stream takes at least about four inter-token gaps."""
    with simulator_client(tmp_path, "--itl", "0.1") as http:
        started = time.monotonic()
        data = _stream(http, CHAT, {**HELLO, "max_tokens": 5})
        elapsed = time.monotonic() - started
    assert data[-1] == "[DONE]"
    assert elapsed >= 0.35


def test_failure_rate_one_fails_every_generation(tmp_path: Path) -> None:
    """With --failure-rate 1 every generation is a 500 in OpenAI error shape, while /health stays 200."""
    with simulator_client(tmp_path, "--failure-rate", "1") as http:
        for path, body in ((CHAT, HELLO), ("/v1/embeddings", {"model": "simulator-embed", "input": "x"})):
            error = _assert_openai_error(http.post(path, json=body), 500)
            assert error["type"] == "server_error"
        assert http.get("/health").status_code == 200


def test_the_gateways_parser_reads_the_simulators_load(tmp_path: Path) -> None:
    """The balancing's parser reads the simulator's `/metrics` as it reads vLLM's: a stream counts as
    running until its end, and nothing waits."""
    from maas_gateway.balancing import parse_vllm_load

    def load(text: str) -> tuple[float, float]:
        sample = parse_vllm_load(text, "simulator-model")
        assert sample is not None, text
        return sample.waiting, sample.running

    with simulator_client(tmp_path, "--itl", "0.2") as http:
        assert load(http.get("/metrics").text) == (0, 0)
        with http.stream("POST", CHAT, json={**HELLO, "stream": True, "max_tokens": 5}) as response:
            lines = response.iter_lines()  # held: a dropped iterator would close the stream
            next(line for line in lines if line.startswith("data: "))
            assert load(http.get("/metrics").text) == (0, 1)
            assert "data: [DONE]" in list(lines)
        assert load(http.get("/metrics").text) == (0, 0)
