"""Every endpoint family metered alike: the ledger and the Prometheus counters name the endpoint and agree,
a client that leaves a stream is charged what was generated, and a backend's failure is charged nothing
(answered in the endpoint's own error shape)."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateways import GatewayFactory
from tests.support.inference import endpoint_rows, inference_config
from tests.support.polling import wait_until
from tests.support.processes import ServerProcess, free_port, maas

KEY = {"Authorization": "Bearer enterpriseuser1_key"}
HELLO = [{"role": "user", "content": "Hello"}]


def test_metrics_and_ledger_agree_per_endpoint(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """One request to each endpoint family: the ledger has one row per endpoint, and the requests
    counter of each endpoint (with its status) says the same."""
    gateway = gateway_factory(inference_config(simulator.url, tmp_path / "spool"))
    calls = {
        "/v1/responses": {"json": {"model": "simulator-model", "input": "Hi", "max_output_tokens": 2}},
        "/v1/messages": {"json": {"model": "simulator-model", "max_tokens": 2, "messages": HELLO}},
        "/v1/rerank": {"json": {"model": "simulator-embed", "query": "q", "documents": ["q"]}},
        "/v1/score": {"json": {"model": "simulator-embed", "text_1": "a", "text_2": "a"}},
        "/tokenize": {"json": {"model": "simulator-model", "prompt": "a b"}},
        "/v1/audio/transcriptions": {
            "files": {"file": ("a.wav", b"RIFF")},
            "data": {"model": "simulator-model"},
        },
    }
    for path, kwargs in calls.items():
        response = httpx.post(gateway.url + path, headers=KEY, timeout=30, **kwargs)  # type: ignore[arg-type]
        assert response.status_code == 200, (path, response.text)
    rows = endpoint_rows(gateway.url, "enterpriseuser1")
    assert set(rows) == set(calls)
    text = httpx.get(gateway.metrics_url + "/metrics").text
    counted = {
        sample.labels["endpoint"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "maas_requests"
        for sample in family.samples
        if sample.name == "maas_requests_total" and sample.labels["status"] == "200"
    }
    assert counted == dict.fromkeys(calls, 1.0)
    tokens = sum(row["total_tokens"] for row in rows.values())
    charged = sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "maas_tokens"
        for sample in family.samples
        if sample.name == "maas_tokens_total"
    )
    assert charged == tokens


def test_client_leaving_a_message_stream_is_charged(gateway_factory: GatewayFactory, tmp_path: Path) -> None:
    """A client that closes a slow Messages stream half-way is charged its input and the output counted
    so far: the ledger shows more than none and less than the cap."""
    port = free_port()
    slow = ServerProcess(maas("sim", "--port", str(port), "--itl", "0.02"), port, tmp_path / "sim.log")
    with slow:
        gateway = gateway_factory(inference_config(slow.url, tmp_path / "spool"))
        body = {"model": "simulator-model", "max_tokens": 200, "messages": HELLO, "stream": True}
        deltas = 0
        with httpx.stream(
            "POST", gateway.url + "/v1/messages", json=body, headers=KEY, timeout=30
        ) as response:
            for line in response.iter_lines():
                deltas += line.startswith("event: content_block_delta")
                if deltas >= 10:
                    break

        def charged() -> dict[str, object] | None:
            return endpoint_rows(gateway.url, "enterpriseuser1").get("/v1/messages")

        row = wait_until(charged, "the abandoned stream in the ledger")
        assert row is not None
        assert 10 <= int(str(row["completion_tokens"])) < 200
        assert int(str(row["prompt_tokens"])) > 0


def test_backend_failure_on_messages_is_not_charged(
    fake_backend: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """A backend's 500 on `/v1/messages` is a 502 in Anthropic's shape (`api_error`), recorded as
    failed, and charged neither tokens nor the request."""
    gateway = gateway_factory(inference_config(fake_backend.url + "/error500", tmp_path / "spool"))
    free = {"x-api-key": "freeuser1_key"}
    body = {"model": "simulator-model", "max_tokens": 2, "messages": HELLO}
    for _ in range(6):  # more than the free tier's 5 requests
        response = httpx.post(gateway.url + "/v1/messages", json=body, headers=free)
        assert response.status_code == 502
        assert response.json()["error"]["type"] == "api_error"
    row = endpoint_rows(gateway.url, "freeuser1")["/v1/messages"]
    assert (row["requests"], row["failed"], row["total_tokens"]) == (6, 6, 0)
