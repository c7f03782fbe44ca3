"""Rerank, score, tokenize and detokenize through the gateway against the simulator: routed by model,
path prefix and host; rerank and score charged the tokens the backend reports, as prompt tokens;
tokenize authenticated and request-limited but never charged tokens; backend failures charged nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.gateways import GatewayFactory
from tests.support.inference import endpoint_rows, inference_config
from tests.support.processes import GatewayProcess, ServerProcess

ENTERPRISE = {"Authorization": "Bearer enterpriseuser1_key"}
RERANK = {"model": "simulator-embed", "query": "red fox", "documents": ["a blue whale", "the red fox"]}


@pytest.fixture
def gateway(simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path) -> GatewayProcess:
    return gateway_factory(inference_config(simulator.url, tmp_path / "spool"))


def _post(
    gateway: GatewayProcess, path: str, body: Any, headers: dict[str, str] = ENTERPRISE
) -> httpx.Response:
    return httpx.post(gateway.url + path, json=body, headers=headers, timeout=30)


@pytest.mark.parametrize("path", ["/v1/rerank", "/v2/rerank"])
def test_rerank_is_charged_what_the_backend_reports_as_prompt(gateway: GatewayProcess, path: str) -> None:
    """Rerank's `usage.total_tokens` is charged as prompt tokens, none as completion, under its path."""
    response = _post(gateway, path, RERANK)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [result["index"] for result in answer["results"]] == [1, 0]
    row = endpoint_rows(gateway.url, "enterpriseuser1")[path]
    assert row["prompt_tokens"] == answer["usage"]["total_tokens"] > 0
    assert row["completion_tokens"] == 0
    assert int(response.headers["x-ratelimit-remaining-tokens"]) == 5000 - answer["usage"]["total_tokens"]


def test_score_is_charged_its_prompt_tokens(gateway: GatewayProcess) -> None:
    """Score's `usage.prompt_tokens` is what the ledger charges."""
    body = {"model": "simulator-embed", "text_1": "red fox", "text_2": ["red fox", "blue whale"]}
    response = _post(gateway, "/v1/score", body)
    assert response.status_code == 200, response.text
    row = endpoint_rows(gateway.url, "enterpriseuser1")["/v1/score"]
    assert row["prompt_tokens"] == response.json()["usage"]["prompt_tokens"] > 0


def test_rerank_routes_by_prefix_and_by_host(gateway: GatewayProcess) -> None:
    """Under a model's path prefix the body needs no model; by Host it names one of the host's models."""
    no_model = {key: value for key, value in RERANK.items() if key != "model"}
    by_prefix = _post(gateway, "/simulator-embed/v1/rerank", no_model)
    assert by_prefix.status_code == 200, by_prefix.text
    assert by_prefix.headers["x-maas-served-model"] == "simulator-embed"
    by_host = _post(gateway, "/v1/rerank", RERANK, {**ENTERPRISE, "Host": "simulator.maas.local"})
    assert by_host.status_code == 200
    mismatch = _post(gateway, "/simulator/v1/rerank", RERANK)
    assert mismatch.status_code == 400
    assert mismatch.json()["error"]["code"] == "model_mismatch"


def test_tokenize_is_request_limited_and_never_token_charged(gateway: GatewayProcess) -> None:
    """Tokenize and detokenize need a key, count as requests (a free user's sixth is 429), and are
    charged no tokens; under a model's prefix they need no `model`."""
    assert _post(gateway, "/tokenize", {"model": "simulator-model", "prompt": "a b"}, {}).status_code == 401
    free = {"Authorization": "Bearer freeuser1_key"}
    tokens = _post(gateway, "/simulator/tokenize", {"prompt": "one two three"}, free)
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["count"] == 3
    text = _post(
        gateway, "/detokenize", {"model": "simulator-model", "tokens": tokens.json()["tokens"]}, free
    )
    assert text.status_code == 200
    assert text.headers["x-ratelimit-remaining-requests"] == "3"
    for _ in range(3):
        assert (
            _post(gateway, "/tokenize", {"model": "simulator-model", "prompt": "x"}, free).status_code == 200
        )
    limited = _post(gateway, "/tokenize", {"model": "simulator-model", "prompt": "x"}, free)
    assert limited.status_code == 429
    assert limited.json()["error"]["type"] == "rate_limit_error"
    rows = endpoint_rows(gateway.url, "freeuser1")
    assert rows["/tokenize"]["requests"] == 5
    assert rows["/tokenize"]["rate_limited"] == 1
    assert rows["/tokenize"]["total_tokens"] == rows["/detokenize"]["total_tokens"] == 0


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/v1/rerank", b"[1, 2]", 400, "invalid_json"),
        ("/v1/rerank", b'{"model": "simulator-embed", "query": "q"}', 400, "invalid_value"),
        ("/v1/rerank", b'{"model": "simulator-embed", "query": 3, "documents": ["d"]}', 400, "invalid_value"),
        ("/v2/rerank", b'{"query": "q", "documents": ["d"]}', 400, "missing_model"),
        ("/v1/score", b'{"model": "ghost", "text_1": "a", "text_2": "b"}', 404, "model_not_found"),
        ("/detokenize", b'{"model": "simulator-model", "tokens": ["a"]}', 400, "invalid_value"),
        ("/tokenize", b"\xff\xfe", 400, "invalid_encoding"),
    ],
)
def test_bad_input_is_refused_in_openai_shape(
    gateway: GatewayProcess, path: str, body: bytes, status: int, code: str
) -> None:
    """Malformed JSON, wrong types, a missing or unknown model: the status and code say which."""
    headers = {**ENTERPRISE, "content-type": "application/json"}
    response = httpx.post(gateway.url + path, content=body, headers=headers)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_get_on_rerank_is_405(gateway: GatewayProcess) -> None:
    """The new endpoints take POST only, and say so."""
    response = httpx.get(gateway.url + "/v1/rerank", headers=ENTERPRISE)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_backend_failure_is_not_charged(
    fake_backend: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """A rerank whose backend fails with 500 is a 502 to the client, recorded as failed, charged no
    tokens, and not counted against the request limit."""
    gateway = gateway_factory(inference_config(fake_backend.url + "/error500", tmp_path / "spool"))
    free = {"Authorization": "Bearer freeuser1_key"}
    failed = _post(gateway, "/v1/rerank", RERANK, free)
    assert failed.status_code == 502
    row = endpoint_rows(gateway.url, "freeuser1")["/v1/rerank"]
    assert (row["requests"], row["failed"], row["total_tokens"]) == (1, 1, 0)
    statuses = [_post(gateway, "/v1/rerank", RERANK, free).status_code for _ in range(6)]
    assert statuses == [502] * 6  # more than the tier's 5 requests: each failure gave its request back
