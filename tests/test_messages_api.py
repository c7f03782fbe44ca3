"""Anthropic's Messages API through the gateway, with Anthropic's own client against the simulator: the
key in `x-api-key`, usage in the ledger equal to what the client saw (streamed too), reserve mode by
`max_tokens`, errors in Anthropic's shape, and no credential header ever reaching a backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest
from anthropic import Anthropic

from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory
from tests.support.inference import endpoint_rows, inference_config
from tests.support.processes import GatewayProcess, ServerProcess

HELLO: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Hello"}]


@pytest.fixture
def gateway(simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path) -> GatewayProcess:
    return gateway_factory(inference_config(simulator.url, tmp_path / "spool"))


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[Anthropic]:
    with Anthropic(base_url=gateway.url, api_key="enterpriseuser1_key", max_retries=0) as sdk:
        yield sdk


def test_messages_create_with_an_x_api_key(gateway: GatewayProcess, client: Anthropic) -> None:
    """`messages.create` (which sends the key as `x-api-key`) answers a typed message; the ledger records
    its `input_tokens`/`output_tokens` under `/v1/messages`, and the limit headers come back."""
    raw = client.messages.with_raw_response.create(
        model="simulator-model", max_tokens=6, messages=HELLO, system="Be brief."
    )
    message = raw.parse()
    assert message.content[0].type == "text"
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 6
    assert raw.headers["x-ratelimit-limit-requests"] == "100"
    row = endpoint_rows(gateway.url, "enterpriseuser1")["/v1/messages"]
    assert row["prompt_tokens"] == message.usage.input_tokens
    assert row["completion_tokens"] == 6


def test_streamed_message_is_charged_from_message_start_and_delta(
    gateway: GatewayProcess, client: Anthropic
) -> None:
    """A streamed message's input tokens (from `message_start`) and output tokens (from the last
    `message_delta`) are what the ledger records."""
    with client.messages.stream(model="simulator-model", max_tokens=4, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert len(text.split()) == 4
    row = endpoint_rows(gateway.url, "enterpriseuser1")["/v1/messages"]
    assert row["prompt_tokens"] == final.usage.input_tokens
    assert row["completion_tokens"] == final.usage.output_tokens == 4


def test_errors_take_anthropic_shape_and_the_sdk_types(gateway: GatewayProcess, client: Anthropic) -> None:
    """A wrong key, an unknown model, a missing `max_tokens` and a token limit reach the client as
    Anthropic's error body, so its client raises its own typed exceptions."""
    with (
        Anthropic(base_url=gateway.url, api_key="not-a-key", max_retries=0) as stranger,
        pytest.raises(anthropic.AuthenticationError),
    ):
        stranger.messages.create(model="simulator-model", max_tokens=5, messages=HELLO)
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="no-such-model", max_tokens=5, messages=HELLO)
    assert missing.value.body == {
        "type": "error",
        "error": {"type": "not_found_error", "message": "The model 'no-such-model' does not exist."},
    }
    response = httpx.post(
        gateway.url + "/v1/messages",
        json={"model": "simulator-model", "messages": HELLO},
        headers={"x-api-key": "enterpriseuser1_key"},
    )
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in error["error"]["message"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{broken", 400),
        (b'{"model": "simulator-model", "max_tokens": 5, "messages": "hi"}', 400),
        (b'{"model": "simulator-model", "max_tokens": 5, "messages": ["hi"]}', 400),
        (
            b'{"model": "simulator-model", "max_tokens": 0, "messages": [{"role": "user", "content": "x"}]}',
            400,
        ),
        (b'{"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}', 400),
        (b'{"model": "nope", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}', 404),
    ],
)
def test_bad_input_is_refused_in_anthropic_shape(gateway: GatewayProcess, body: bytes, status: int) -> None:
    """Malformed JSON, wrong types, a missing or unknown model: the right status, Anthropic's body."""
    response = httpx.post(
        gateway.url + "/v1/messages",
        content=body,
        headers={"x-api-key": "enterpriseuser1_key", "content-type": "application/json"},
    )
    assert response.status_code == status
    assert response.json()["type"] == "error"
    assert response.json()["error"]["message"]


def test_token_limit_is_anthropic_rate_limit_error(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """A user out of tokens gets 429 `rate_limit_error` in Anthropic's shape, with Retry-After."""
    config = inference_config(simulator.url, tmp_path / "spool")
    config["tiers"]["premium"]["limits"] = [{"limit": 20, "unit": "tokens", "window": "1h"}]
    gateway = gateway_factory(config)
    with Anthropic(base_url=gateway.url, api_key="premiumuser1_key", max_retries=0) as sdk:
        sdk.messages.create(model="simulator-model", max_tokens=30, messages=HELLO)
        with pytest.raises(anthropic.RateLimitError) as caught:
            sdk.messages.create(model="simulator-model", max_tokens=1, messages=HELLO)
    assert int(caught.value.response.headers["retry-after"]) >= 1
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


def test_reserve_mode_reserves_the_max_tokens_the_request_set(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """A reserving tier admits a message against its own `max_tokens`: one that could overrun the
    tokens left is forwarded with `max_tokens` lowered to what remains (and says so in a header), one
    that fits is forwarded as sent; each is charged what it used, and nothing overruns the limit."""
    config = inference_config(simulator.url, tmp_path / "spool", reserve_tier="premium")
    config["tiers"]["premium"]["limits"] = [{"limit": 200, "unit": "tokens", "window": "1h"}]
    gateway = gateway_factory(config)
    with Anthropic(base_url=gateway.url, api_key="premiumuser1_key", max_retries=0) as sdk:
        fits = sdk.messages.create(model="simulator-model", max_tokens=5, messages=HELLO)
        raw = sdk.messages.with_raw_response.create(model="simulator-model", max_tokens=500, messages=HELLO)
    clamped = raw.parse()
    asked, granted = raw.headers["x-maas-max-tokens-clamped"].split(" -> ")
    assert int(asked) == 500
    assert 0 < clamped.usage.output_tokens <= int(granted) < 500
    row = endpoint_rows(gateway.url, "premiumuser1")["/v1/messages"]
    assert row["completion_tokens"] == fits.usage.output_tokens + clamped.usage.output_tokens
    assert row["total_tokens"] <= 200
    assert row["rate_limited"] == 0


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/chat/completions", "/v1/embeddings"])
def test_no_credential_header_reaches_a_backend(
    fake_backend: ServerProcess, gateway_factory: GatewayFactory, path: str
) -> None:
    """Whichever header carried the key (`Authorization`, `x-api-key`, or both, and Azure's `api-key`),
    the backend that echoes what it got sees none of them, on every endpoint."""
    gateway = gateway_factory(demo_dict(fake_backend.url + "/record", limits=False))
    body = {"model": "simulator-model", "max_tokens": 3, "messages": HELLO, "input": "x"}
    for headers in (
        {"x-api-key": "enterpriseuser1_key"},
        {"Authorization": "Bearer enterpriseuser1_key", "x-api-key": "premiumuser1_key"},
        {"x-api-key": "enterpriseuser1_key", "api-key": "secret-azure", "X_Api_Key": "smuggled"},
    ):
        response = httpx.post(gateway.url + path, json=body, headers=headers)
        assert response.status_code == 200, response.text
        seen = httpx.get(fake_backend.url + "/record/last").json()
        leaked = {
            name for name in seen if name.replace("_", "-") in ("authorization", "x-api-key", "api-key")
        }
        assert not leaked, seen
        assert seen["x-maas-user"] == "enterpriseuser1"


def test_authorization_wins_over_x_api_key(gateway: GatewayProcess) -> None:
    """With both headers, `Authorization` names the caller; an empty `x-api-key` alone is 401."""
    both = httpx.post(
        gateway.url + "/v1/messages",
        json={"model": "simulator-model", "max_tokens": 2, "messages": HELLO},
        headers={"Authorization": "Bearer premiumuser1_key", "x-api-key": "enterpriseuser1_key"},
    )
    assert both.status_code == 200
    assert endpoint_rows(gateway.url, "premiumuser1")["/v1/messages"]["requests"] == 1
    empty = httpx.post(gateway.url + "/v1/messages", json={}, headers={"x-api-key": ""})
    assert empty.status_code == 401
    assert empty.json()["error"]["type"] == "authentication_error"


def test_a_broken_message_stream_ends_with_an_anthropic_error_event(
    fake_backend: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """A backend that breaks off a Messages stream: the client's stream ends with `event: error` in
    Anthropic's shape, so its client raises rather than returning half a message as whole."""
    gateway = gateway_factory(demo_dict(fake_backend.url + "/stream-break", limits=False))
    body = {"model": "simulator-model", "max_tokens": 5, "messages": HELLO, "stream": True}
    with httpx.stream(
        "POST", gateway.url + "/v1/messages", json=body, headers={"x-api-key": "enterpriseuser1_key"}
    ) as response:
        text = response.read().decode()
    last = text.strip().split("\n\n")[-1]
    assert last.startswith("event: error\ndata: ")
    error = json.loads(last.removeprefix("event: error\ndata: "))
    assert error["type"] == "error"
    assert error["error"]["type"] == "api_error"
