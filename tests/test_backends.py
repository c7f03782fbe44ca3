"""Broken, slow and nosy backends: 502/504 in OpenAI's shape, identity headers set by the gateway only."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory, start_gateway
from tests.support.processes import ServerProcess

CHAT = {"model": "fake", "messages": [{"role": "user", "content": "Hello"}]}
BEHAVIOURS = [
    "record",
    "garbage",
    "error500",
    "error400",
    "slow",
    "close",
    "nousage",
    "stream-break",
    "stream-nousage",
    "stream-stall",
]


@pytest.fixture(scope="module")
def nosy_gateway(
    simulator: ServerProcess, fake_backend: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """A gateway with one model per fake-backend behaviour, a 1 s read timeout and limits on."""
    config = demo_dict(simulator.url)
    config["server"]["upstream_read_timeout"] = "1s"
    for behaviour in BEHAVIOURS:
        config["models"].append(
            {"name": behaviour, "backends": [f"{fake_backend.url}/{behaviour}"], "served_name": "fake"}
        )
    server = start_gateway(config, tmp_path_factory.mktemp("nosy"))
    yield server
    server.stop()


def _chat(gateway: ServerProcess, model: str, **extra: Any) -> httpx.Response:
    headers = {"Authorization": "Bearer enterpriseuser1_key", **extra.pop("headers", {})}
    return httpx.post(
        gateway.url + "/v1/chat/completions",
        json={**CHAT, "model": model, **extra},
        headers=headers,
        timeout=10,
    )


def test_identity_headers_are_set_by_the_gateway_and_forgeries_dropped(
    nosy_gateway: ServerProcess, fake_backend: ServerProcess
) -> None:
    """The backend sees the gateway's x-maas-* identity, never the client's forgeries or its key."""
    forged = {
        "X-MaaS-User": "admin",
        "X-MaaS-Tier": "enterprise",
        "X-Forwarded-User": "root",
        "X-Custom": "kept",
        "Expect": "100-continue",
    }
    assert _chat(nosy_gateway, "record", headers=forged).status_code == 200
    seen = httpx.get(fake_backend.url + "/record/last").json()
    assert seen["x-maas-user"] == "enterpriseuser1"
    assert seen["x-maas-tier"] == "enterprise"
    assert seen["x-maas-model"] == "record"
    assert seen["x-maas-key-id"].startswith("key_")
    assert "x-forwarded-user" not in seen
    assert "authorization" not in seen
    assert "expect" not in seen  # the gateway read the body already; the backend must not wait for it
    assert seen["x-custom"] == "kept"
    assert len(seen["x-request-id"]) == 32


@pytest.mark.parametrize(
    ("model", "status", "code"),
    [
        ("garbage", 502, "bad_gateway"),
        ("error500", 502, "bad_gateway"),
        ("close", 502, "backend_unavailable"),
        ("slow", 504, "backend_timeout"),
    ],
)
def test_broken_backends_are_502_or_504(
    nosy_gateway: ServerProcess, model: str, status: int, code: str
) -> None:
    """A backend that crashes, babbles, hangs up or stalls gives a clear 502/504, and the gateway lives on."""
    response = _chat(nosy_gateway, model)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"].endswith(".")
    assert _chat(nosy_gateway, "record").status_code == 200


@pytest.mark.parametrize("model", ["record", "stream-nousage"])
def test_backend_connections_are_kept_alive_and_reused(
    nosy_gateway: ServerProcess, fake_backend: ServerProcess, model: str
) -> None:
    """One request after another, the gateway sends every one over the same backend connection."""
    stream = model.startswith("stream")
    for _ in range(2):  # a connection left idle by an earlier test is as good as a new one
        assert _chat(nosy_gateway, model, stream=stream).status_code == 200
    before = len(httpx.get(fake_backend.url + "/peers").json())
    for _ in range(5):
        assert _chat(nosy_gateway, model, stream=stream).status_code == 200
    ports = httpx.get(fake_backend.url + "/peers").json()[before:]
    assert len(ports) == 5
    assert len(set(ports)) == 1, f"The gateway opened a new backend connection per request: {ports}."


def test_unreachable_backend_is_502(simulator: ServerProcess, gateway_factory: GatewayFactory) -> None:
    """A backend nobody listens on is 502 backend_unavailable."""
    from tests.support.processes import free_port

    config = demo_dict(f"http://127.0.0.1:{free_port()}", limits=False)
    gateway = gateway_factory(config)
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"Authorization": "Bearer freeuser1_key"},
        json={**CHAT, "model": "simulator-model"},
    )
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "backend_unavailable"


def test_backend_client_errors_keep_their_status_in_openai_shape(nosy_gateway: ServerProcess) -> None:
    """A backend's 400 (vLLM's own error shape) reaches the client as an OpenAI error with its message."""
    response = _chat(nosy_gateway, "error400")
    assert response.status_code == 400
    assert "maximum context length" in response.json()["error"]["message"]


def test_missing_usage_is_estimated_and_charged(nosy_gateway: ServerProcess) -> None:
    """Without backend usage the gateway estimates tokens (about 4 characters each) and charges them."""
    response = _chat(nosy_gateway, "nousage")
    assert response.status_code == 200
    assert int(response.headers["x-ratelimit-consumed-tokens"]) == 2 + 12  # prompt "Hello", 48 chars


def _stream_text(gateway: ServerProcess, model: str) -> str:
    """The whole text of a streamed chat answer, which must start as a 200."""
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        json={**CHAT, "model": model, "stream": True},
        headers={"Authorization": "Bearer enterpriseuser1_key"},
    ) as response:
        assert response.status_code == 200
        return "".join(response.iter_text())


def test_stream_that_breaks_ends_with_an_error_event(nosy_gateway: ServerProcess) -> None:
    """A backend that drops a stream midway: the client gets what was sent plus an in-band error event."""
    text = _stream_text(nosy_gateway, "stream-break")
    assert '"one "' in text
    assert '"two "' in text
    assert "broke off the stream" in text
    assert _access_log_line(nosy_gateway, "stream-break")["error"] == "backend_unavailable"


def test_stream_that_stalls_ends_after_the_read_timeout(nosy_gateway: ServerProcess) -> None:
    """A stream that goes silent for longer than the read timeout (1 s) ends with an error event, before
    the backend's silence (3 s) ends: the [DONE] it sends afterwards never arrives. The access log names
    the timeout as the cause."""
    text = _stream_text(nosy_gateway, "stream-stall")
    assert '"two "' in text
    assert "broke off the stream" in text
    assert "[DONE]" not in text
    assert _access_log_line(nosy_gateway, "stream-stall")["error"] == "backend_timeout"


def _access_log_line(gateway: ServerProcess, model: str) -> dict[str, Any]:
    """The last access-log line for ``model``; lines are written in batches, at most 50 ms late."""
    deadline = time.monotonic() + 5
    while True:
        lines = [line for line in gateway.log().splitlines() if f'"model":"{model}"' in line]
        if lines:
            return dict(json.loads(lines[-1]))
        assert time.monotonic() < deadline, f"No access-log line for {model}."
        time.sleep(0.05)


def test_access_log_has_users_but_never_keys(nosy_gateway: ServerProcess) -> None:
    """The access log names users and key ids, never a key or the Authorization header."""
    _chat(nosy_gateway, "record")
    deadline = time.monotonic() + 5  # lines are written in batches, at most 50 ms late
    while '"user":"enterpriseuser1"' not in (log := nosy_gateway.log()):
        assert time.monotonic() < deadline, log
        time.sleep(0.05)
    assert "enterpriseuser1_key" not in log
    assert "Traceback" not in log
