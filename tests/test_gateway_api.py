"""The gateway's OpenAI-compatible API over real HTTP: routing, authentication and every error status."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory
from tests.support.processes import ServerProcess

CHAT = {"model": "simulator-model", "messages": [{"role": "user", "content": "Hello"}]}


def _post(
    gateway: ServerProcess, path: str, body: Any, key: str = "premiumuser1_key", **kw: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", **kw.pop("headers", {})}
    return httpx.post(gateway.url + path, json=body, headers=headers, timeout=10, **kw)


def _assert_openai_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code"}
    assert error["message"].endswith("."), "error messages are whole sentences"
    assert "Traceback" not in response.text
    if code is not None:
        assert error["code"] == code
    return dict(error)


def test_chat_completion_passes_through_with_usage(gateway: ServerProcess) -> None:
    """A chat completion reaches the simulator and comes back unchanged, usage included."""
    response = _post(gateway, "/v1/chat/completions", CHAT)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}
    assert len(response.headers["x-request-id"]) == 32


def test_apikey_scheme_of_the_origin_system_works(gateway: ServerProcess) -> None:
    """`Authorization: APIKEY <key>` authenticates like `Bearer <key>`."""
    response = httpx.post(
        gateway.url + "/v1/chat/completions", json=CHAT, headers={"Authorization": "APIKEY freeuser1_key"}
    )
    assert response.status_code == 200


def test_completions_and_embeddings(gateway: ServerProcess) -> None:
    """Legacy completions and embeddings are proxied to the right models."""
    completion = _post(
        gateway, "/v1/completions", {"model": "simulator-model", "prompt": "Say hi", "max_tokens": 3}
    )
    assert completion.status_code == 200
    assert completion.json()["usage"]["completion_tokens"] == 3
    embedding = _post(gateway, "/v1/embeddings", {"model": "simulator-embed", "input": ["a", "b"]})
    assert embedding.status_code == 200
    assert [item["index"] for item in embedding.json()["data"]] == [0, 1]


def test_routing_by_host_header(gateway: ServerProcess) -> None:
    """A Host listed by several models routes by the body's model; the host's port is ignored."""
    host = {"Host": "simulator.maas.local:8000"}
    chat = _post(gateway, "/v1/chat/completions", CHAT, headers=host)
    assert chat.status_code == 200
    embed = _post(gateway, "/v1/embeddings", {"model": "simulator-embed", "input": "x"}, headers=host)
    assert embed.status_code == 200
    other = _post(gateway, "/v1/chat/completions", {**CHAT, "model": "gpt-4"}, headers=host)
    _assert_openai_error(other, 400, "model_mismatch")


def test_a_host_of_several_models_needs_the_body_to_name_one(gateway: ServerProcess) -> None:
    """The demo host serves two models: a body without `model` is a 400 that lists them."""
    response = _post(
        gateway,
        "/v1/chat/completions",
        {"messages": CHAT["messages"]},
        headers={"Host": "simulator.maas.local"},
    )
    error = _assert_openai_error(response, 400, "missing_model")
    assert error["param"] == "model"
    assert error["message"] == (
        "The host 'simulator.maas.local' serves several models ('simulator-model' and 'simulator-embed'): "
        "the request body must name one of them in `model`."
    )


def test_routing_by_path_prefix(gateway: ServerProcess) -> None:
    """`/simulator/v1/...` reaches simulator-model when the body names it or no model at all."""
    response = _post(gateway, "/simulator/v1/chat/completions", CHAT)
    assert response.status_code == 200
    assert response.json()["model"] == "simulator-model"
    no_model = _post(gateway, "/simulator/v1/chat/completions", {"messages": CHAT["messages"]})
    assert no_model.status_code == 200
    assert no_model.json()["model"] == "simulator-model"
    unknown = _post(gateway, "/nosuchmodel/v1/chat/completions", CHAT)
    _assert_openai_error(unknown, 404, "model_not_found")


@pytest.mark.parametrize("named", ["simulator-embed", "anything"])
def test_a_path_prefix_and_a_body_model_that_disagree_are_400(gateway: ServerProcess, named: str) -> None:
    """A body naming another model than the prefix's, configured or not, is a 400 naming both, and the
    prefix no longer wins silently."""
    response = _post(gateway, "/simulator/v1/chat/completions", {**CHAT, "model": named})
    error = _assert_openai_error(response, 400, "model_mismatch")
    assert error["param"] == "model"
    assert error["message"] == (
        f"The path prefix '/simulator' serves the model 'simulator-model', but the request body names the "
        f"model '{named}'."
    )


def test_models_lists_only_what_the_caller_may_use(
    simulator: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """`/v1/models` hides models restricted to other tiers, and using one is 403."""
    config = demo_dict(simulator.url, limits=False)
    config["models"][0]["tiers"] = ["premium", "enterprise"]
    gateway = gateway_factory(config)
    free = httpx.get(gateway.url + "/v1/models", headers={"Authorization": "Bearer freeuser1_key"})
    premium = httpx.get(gateway.url + "/v1/models", headers={"Authorization": "Bearer premiumuser1_key"})
    assert [m["id"] for m in free.json()["data"]] == ["simulator-embed"]
    assert [m["id"] for m in premium.json()["data"]] == ["simulator-model", "simulator-embed"]
    denied = _post(gateway, "/v1/chat/completions", CHAT, key="freeuser1_key")
    _assert_openai_error(denied, 403, "model_not_allowed")
    single = httpx.get(
        gateway.url + "/v1/models/simulator-model", headers={"Authorization": "Bearer freeuser1_key"}
    )
    _assert_openai_error(single, 404, "model_not_found")


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_api_key"),
        ({"Authorization": "Bearer wrong_key"}, "invalid_api_key"),
        ({"Authorization": "Basic Zm9vOmJhcg=="}, "invalid_authorization_scheme"),
        ({"Authorization": "Bearer"}, "missing_api_key"),
    ],
)
def test_bad_credentials_are_401(gateway: ServerProcess, headers: dict[str, str], code: str) -> None:
    """Missing, unknown or malformed credentials get 401 in OpenAI's shape."""
    response = httpx.post(gateway.url + "/v1/chat/completions", json=CHAT, headers=headers)
    _assert_openai_error(response, 401, code)
    models = httpx.get(gateway.url + "/v1/models", headers=headers)
    _assert_openai_error(models, 401, code)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"\xff\xfe{}", None),
        (b"[1, 2]", None),
        (b"", None),
        (b'{"model": "simulator-model"}', "messages"),
        (b'{"model": "simulator-model", "messages": []}', "messages"),
        (b'{"model": "simulator-model", "messages": "hi"}', "messages"),
        (b'{"model": 42, "messages": [{"role": "user", "content": "x"}]}', "model"),
        (
            b'{"model": "simulator-model", "stream": "yes", "messages": [{"role": "user", "content": "x"}]}',
            "stream",
        ),
        (
            b'{"model": "simulator-model", "max_tokens": -1, "messages": [{"role": "user", "content": "x"}]}',
            "max_tokens",
        ),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
    ],
)
def test_malformed_bodies_are_400(gateway: ServerProcess, body: bytes, param: str | None) -> None:
    """Broken JSON, non-UTF-8, wrong types and missing fields are 400 naming the problem."""
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        content=body,
        headers={"Authorization": "Bearer premiumuser1_key", "Content-Type": "application/json"},
    )
    error = _assert_openai_error(response, 400)
    if param is not None:
        assert error["param"] == param
        assert param in error["message"]


def test_non_utf8_body_says_so(gateway: ServerProcess) -> None:
    """A body that is not UTF-8 is reported as such, not as generic bad JSON."""
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        content=b'{"model": "simulator-model", "messages": [{"role": "user", "content": "\xff"}]}',
        headers={"Authorization": "Bearer premiumuser1_key"},
    )
    error = _assert_openai_error(response, 400, "invalid_encoding")
    assert "UTF-8" in error["message"]


def test_wrong_method_is_405_with_allow(gateway: ServerProcess) -> None:
    """GET on a POST endpoint is 405 and says which method to use."""
    response = httpx.get(
        gateway.url + "/v1/chat/completions", headers={"Authorization": "Bearer premiumuser1_key"}
    )
    _assert_openai_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"
    health = httpx.post(gateway.url + "/health")
    assert health.status_code == 405


def test_unknown_path_is_404(gateway: ServerProcess) -> None:
    """A path the gateway does not serve is 404 in OpenAI's shape."""
    _assert_openai_error(httpx.get(gateway.url + "/nope"), 404, "unknown_url")


def test_body_over_the_limit_is_413_while_reading(gateway: ServerProcess) -> None:
    """A body over 10 MiB is refused with 413, whether or not it declares its length."""
    big = (
        b'{"model": "simulator-model", "messages": [{"role": "user", "content": "'
        + b"x" * (11 * 2**20)
        + b'"}]}'
    )
    declared = httpx.post(
        gateway.url + "/v1/chat/completions",
        content=big,
        headers={"Authorization": "Bearer premiumuser1_key"},
    )
    _assert_openai_error(declared, 413, "request_too_large")

    def chunks() -> Any:
        for start in range(0, len(big), 2**20):
            yield big[start : start + 2**20]

    streamed = httpx.post(
        gateway.url + "/v1/chat/completions",
        content=chunks(),
        headers={"Authorization": "Bearer premiumuser1_key"},
    )
    _assert_openai_error(streamed, 413, "request_too_large")
    assert _post(gateway, "/v1/chat/completions", CHAT).status_code == 200


def test_health_and_ready_need_no_credentials(gateway: ServerProcess) -> None:
    """`/health` and `/ready` answer 200 without a key."""
    assert httpx.get(gateway.url + "/health").json() == {"status": "ok"}
    ready = httpx.get(gateway.url + "/ready").json()
    assert ready == {"status": "ready", "models_without_available_backends": 0}
