"""The OpenAI Responses API through the gateway, with the official SDK against the simulator: usage in the
ledger equals what the client saw, limits apply in tokens (reserve mode by `max_output_tokens`), stored
responses are read back from the backend that made them by their owner only, and bad input is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai import OpenAI

from tests.support.gateways import GatewayFactory
from tests.support.inference import endpoint_rows, inference_config
from tests.support.polling import wait_until
from tests.support.processes import GatewayProcess, ServerProcess, free_port, maas
from tests.support.redis_server import RedisServer
from tests.support.simulators import simulator_fleet


@pytest.fixture
def gateway(simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path) -> GatewayProcess:
    return gateway_factory(inference_config(simulator.url, tmp_path / "spool", reserve_tier="free"))


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[OpenAI]:
    with OpenAI(base_url=gateway.url + "/v1", api_key="enterpriseuser1_key", max_retries=0) as sdk:
        yield sdk


def _headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_responses_create_is_metered_as_the_client_saw_it(gateway: GatewayProcess, client: OpenAI) -> None:
    """`responses.create` answers with usage in `input_tokens`/`output_tokens`; the ledger records the
    same tokens under `/v1/responses`, and the answer carries the limit headers."""
    raw = client.responses.with_raw_response.create(
        model="simulator-model", input="Hello there", max_output_tokens=7
    )
    reply = raw.parse()
    assert reply.output_text.strip()
    assert reply.usage is not None
    assert reply.usage.output_tokens == 7
    assert raw.headers["x-ratelimit-limit-requests"] == "100"
    remaining = 5000 - reply.usage.input_tokens - 7  # the tightest token window: 5000 per hour
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) == remaining
    row = endpoint_rows(gateway.url, "enterpriseuser1")["/v1/responses"]
    assert (row["requests"], row["prompt_tokens"], row["completion_tokens"]) == (
        1,
        reply.usage.input_tokens,
        7,
    )


def test_streamed_response_is_charged_from_its_completed_event(
    gateway: GatewayProcess, client: OpenAI
) -> None:
    """A streamed response's usage, read from its last event (`response.incomplete` here, as the cap
    stopped it; `response.completed` otherwise), is what the ledger records."""
    stream = client.responses.create(model="simulator-model", input="Hi", max_output_tokens=5, stream=True)
    events = list(stream)
    deltas = [event for event in events if event.type == "response.output_text.delta"]
    ended = [event for event in events if event.type in ("response.completed", "response.incomplete")]
    assert len(deltas) == 5
    assert len(ended) == 1
    usage = ended[0].response.usage
    assert usage is not None
    row = endpoint_rows(gateway.url, "enterpriseuser1")["/v1/responses"]
    assert (row["prompt_tokens"], row["completion_tokens"]) == (usage.input_tokens, usage.output_tokens)
    assert row["rate_limited"] == 0


def test_reserve_mode_caps_output_with_max_output_tokens(gateway: GatewayProcess) -> None:
    """A reserving tier's request without `max_output_tokens` is sent with the tier's default in that
    field (the simulator then stops at 3 tokens), and is charged what it used."""
    with OpenAI(base_url=gateway.url + "/v1", api_key="freeuser1_key", max_retries=0) as free:
        reply = free.responses.create(model="simulator-model", input="Hi")
    assert reply.usage is not None
    assert reply.usage.output_tokens == 3
    assert endpoint_rows(gateway.url, "freeuser1")["/v1/responses"]["completion_tokens"] == 3


def test_token_limit_refuses_with_the_sdk_rate_limit_error(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """Once a user's tokens are spent, `responses.create` raises `openai.RateLimitError` (429,
    Retry-After), and the refusal is recorded as rate limited."""
    config = inference_config(simulator.url, tmp_path / "spool")
    config["tiers"]["premium"]["limits"] = [{"limit": 30, "unit": "tokens", "window": "1h"}]
    gateway = gateway_factory(config)
    with OpenAI(base_url=gateway.url + "/v1", api_key="premiumuser1_key", max_retries=0) as sdk:
        sdk.responses.create(model="simulator-model", input="Hi", max_output_tokens=40)
        with pytest.raises(openai.RateLimitError) as caught:
            sdk.responses.create(model="simulator-model", input="Hi", max_output_tokens=1)
    assert int(caught.value.response.headers["retry-after"]) >= 1
    row = endpoint_rows(gateway.url, "premiumuser1")["/v1/responses"]
    assert (row["requests"], row["rate_limited"]) == (2, 1)


def test_stored_response_is_read_back_by_its_owner_only(gateway: GatewayProcess, client: OpenAI) -> None:
    """`responses.retrieve` finds the response on the backend that made it; another user gets 404 for
    the same id (never forwarded), and after `responses.delete` the owner gets 404 too. Reading back is
    not charged in tokens."""
    created = client.responses.create(model="simulator-model", input="Remember me", max_output_tokens=4)
    again = client.responses.retrieve(created.id)
    assert again.id == created.id
    assert again.output_text == created.output_text
    other = httpx.get(gateway.url + f"/v1/responses/{created.id}", headers=_headers("premiumuser1_key"))
    assert other.status_code == 404
    assert other.json()["error"]["code"] == "response_not_found"
    unknown = httpx.get(gateway.url + "/v1/responses/resp_nope", headers=_headers("enterpriseuser1_key"))
    assert unknown.status_code == 404
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    rows = endpoint_rows(gateway.url, "enterpriseuser1")
    assert rows["/v1/responses/{id}"]["requests"] == 4  # retrieve, delete, retrieve and the unknown id
    assert rows["/v1/responses/{id}"]["total_tokens"] == 0
    assert rows["/v1/responses"]["completion_tokens"] == 4


def test_method_not_allowed_and_unknown_action_on_a_stored_response(gateway: GatewayProcess) -> None:
    """`PUT /v1/responses/{id}` is 405 naming the methods allowed; an unknown sub-path is 404."""
    headers = _headers("enterpriseuser1_key")
    put = httpx.put(gateway.url + "/v1/responses/resp_x", headers=headers)
    assert put.status_code == 405
    assert put.headers["allow"] == "GET, DELETE"
    odd = httpx.get(gateway.url + "/v1/responses/resp_x/../../admin/usage", headers=headers)
    assert odd.status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b'{"model": "simulator-model", "input": 5}', 400, "invalid_value"),
        (b'{"model": "simulator-model", "input": "x", "max_output_tokens": "9"}', 400, "invalid_value"),
        (b'{"model": "simulator-model", "input": "x", "stream": "yes"}', 400, "invalid_value"),
        (b'{"input": "x"}', 400, "missing_model"),
        (b'{"model": "no-such-model", "input": "x"}', 404, "model_not_found"),
    ],
)
def test_bad_input_is_refused_in_openai_shape(
    gateway: GatewayProcess, body: bytes, status: int, code: str
) -> None:
    """Malformed JSON, wrong types, a missing or unknown model: the status and code say which."""
    response = httpx.post(
        gateway.url + "/v1/responses",
        content=body,
        headers={**_headers("enterpriseuser1_key"), "content-type": "application/json"},
    )
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_client_leaving_a_streamed_response_is_charged(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """A client that closes a slow streamed response half-way is charged the tokens generated so far
    (estimated, since `response.completed` never came), not nothing and not the whole cap."""
    port = free_port()
    slow = ServerProcess(maas("sim", "--port", str(port), "--itl", "0.02"), port, tmp_path / "sim.log")
    with slow:
        gateway = gateway_factory(inference_config(slow.url, tmp_path / "spool"))
        body = {"model": "simulator-model", "input": "Hello", "stream": True, "max_output_tokens": 200}
        deltas = 0
        with httpx.stream(
            "POST", gateway.url + "/v1/responses", json=body, headers=_headers("enterpriseuser1_key")
        ) as response:
            for line in response.iter_lines():
                deltas += line.startswith("event: response.output_text.delta")
                if deltas >= 10:
                    break

        def charged() -> dict[str, object] | None:
            return endpoint_rows(gateway.url, "enterpriseuser1").get("/v1/responses")

        row = wait_until(charged, "the abandoned stream in the ledger")
        assert row is not None
        assert 10 <= int(str(row["completion_tokens"])) < 200


def test_stored_response_is_found_through_another_replica(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """Two gateways sharing Redis: a response created through one is read back and deleted through the
    other by its owner, and stays a 404 for another user on either."""
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis").start()
    try:
        config = inference_config(simulator.url, tmp_path / "spool")
        config["limits"]["storage"] = server.url
        first, second = gateway_factory(config), gateway_factory(config)
        with OpenAI(base_url=first.url + "/v1", api_key="enterpriseuser1_key", max_retries=0) as one:
            created = one.responses.create(model="simulator-model", input="Hi", max_output_tokens=2)
        with OpenAI(base_url=second.url + "/v1", api_key="enterpriseuser1_key", max_retries=0) as two:
            assert two.responses.retrieve(created.id).id == created.id
            for gateway in (first, second):
                other = httpx.get(
                    gateway.url + f"/v1/responses/{created.id}", headers=_headers("premiumuser1_key")
                )
                assert other.status_code == 404
            two.responses.delete(created.id)
        with (
            OpenAI(base_url=first.url + "/v1", api_key="enterpriseuser1_key", max_retries=0) as one,
            pytest.raises(openai.NotFoundError),
        ):
            one.responses.retrieve(created.id)
    finally:
        server.stop()


def test_redis_outage_never_fails_a_create_and_a_read_says_so(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """With Redis down (limits failing open), `responses.create` still answers; reading a response
    back is a 503 that says the look-up is unavailable, not a 404 that says it does not exist."""
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis").start()
    config = inference_config(simulator.url, tmp_path / "spool")
    config["limits"].update(storage=server.url, failure_policy="fail-open")
    gateway = gateway_factory(config)
    server.stop()
    with OpenAI(base_url=gateway.url + "/v1", api_key="enterpriseuser1_key", max_retries=0) as sdk:
        created = sdk.responses.create(model="simulator-model", input="Hi", max_output_tokens=2)
        with pytest.raises(openai.InternalServerError) as caught:
            sdk.responses.retrieve(created.id)
    assert caught.value.status_code == 503
    assert "cannot look up stored responses" in caught.value.message


def test_a_continued_conversation_goes_to_the_backend_that_stored_it(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """With two backends (each storing only its own responses), every request continuing a response
    (`previous_response_id`) is sent to the backend that stored it, so none is a 404; another user's
    id is refused before any backend is asked."""
    with simulator_fleet(tmp_path, 2) as fleet:
        config = inference_config(fleet[0].url, tmp_path / "spool")
        config["models"][0]["backends"] = [server.url for server in fleet]
        config["models"][0]["balancing"] = "round-robin"
        gateway = gateway_factory(config)
        with OpenAI(base_url=gateway.url + "/v1", api_key="enterpriseuser1_key", max_retries=0) as sdk:
            first = sdk.responses.create(model="simulator-model", input="Hi", max_output_tokens=2)
            for _ in range(4):  # round robin would send every other one to the backend without it
                reply = sdk.responses.create(
                    model="simulator-model", input="More", max_output_tokens=2, previous_response_id=first.id
                )
                assert reply.status == "completed" or reply.status == "incomplete"
        stolen = httpx.post(
            gateway.url + "/v1/responses",
            json={"model": "simulator-model", "input": "x", "previous_response_id": first.id},
            headers=_headers("premiumuser1_key"),
        )
        assert stolen.status_code == 404
        assert stolen.json()["error"]["code"] == "previous_response_not_found"
        assert stolen.json()["error"]["param"] == "previous_response_id"
