"""`GET /v1/models` as clients read it, and operators' `extra_paths`: further backend paths forwarded with
authentication and request limits, charged the usage the answer reports (and nothing it does not)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI
from pydantic import ValidationError

from maas_gateway.config.schema import ModelConfig
from tests.support.gateways import GatewayFactory
from tests.support.inference import endpoint_rows, inference_config
from tests.support.processes import GatewayProcess, ServerProcess

FREE = {"Authorization": "Bearer freeuser1_key"}


def test_models_show_context_length_owner_and_only_what_the_caller_may_use(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """The list carries `max_model_len` (when configured), `owned_by` and `created`; a model closed to
    the caller's tier is neither listed nor retrievable."""
    config = inference_config(simulator.url, tmp_path / "spool")
    config["models"][0].update(max_model_len=8192, owned_by="acme")
    config["models"][1]["tiers"] = ["enterprise"]
    gateway = gateway_factory(config)
    with OpenAI(base_url=gateway.url + "/v1", api_key="freeuser1_key", max_retries=0) as sdk:
        models = list(sdk.models.list())
    assert [model.id for model in models] == ["simulator-model"]
    assert models[0].owned_by == "acme"
    assert models[0].created > 0
    assert models[0].model_extra == {"max_model_len": 8192}
    hidden = httpx.get(gateway.url + "/v1/models/simulator-embed", headers=FREE)
    assert hidden.status_code == 404
    everyone = httpx.get(gateway.url + "/v1/models", headers={"x-api-key": "enterpriseuser1_key"}).json()
    assert {model["id"] for model in everyone["data"]} == {"simulator-model", "simulator-embed"}
    assert "max_model_len" not in everyone["data"][1]


@pytest.fixture
def gateway(fake_backend: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path) -> GatewayProcess:
    """Models on the recording fake backend; only `simulator-model` offers `/v1/pooling`."""
    config = inference_config(fake_backend.url + "/record", tmp_path / "spool")
    config["models"][0]["extra_paths"] = ["/v1/pooling"]
    config["models"].append(
        {"name": "quiet", "backends": [fake_backend.url + "/nousage"], "extra_paths": ["/v1/classify"]}
    )
    return gateway_factory(config)


def _post(
    gateway: GatewayProcess, path: str, body: dict[str, Any], headers: dict[str, str]
) -> httpx.Response:
    return httpx.post(gateway.url + path, json=body, headers=headers, timeout=30)


def test_extra_path_is_forwarded_authenticated_and_charged_its_usage(
    gateway: GatewayProcess, fake_backend: ServerProcess
) -> None:
    """An extra path reaches the model's backend with the gateway's identity headers and no client
    credential, and the usage the answer reports is charged to the path."""
    response = _post(gateway, "/v1/pooling", {"model": "simulator-model", "input": "x"}, FREE)
    assert response.status_code == 200, response.text
    seen = httpx.get(fake_backend.url + "/record/last").json()
    assert seen["x-maas-user"] == "freeuser1"
    assert "authorization" not in seen
    row = endpoint_rows(gateway.url, "freeuser1")["/v1/pooling"]
    assert (row["prompt_tokens"], row["completion_tokens"]) == (7, 5)
    by_prefix = _post(gateway, "/simulator/v1/pooling", {"input": "x"}, FREE)
    assert by_prefix.status_code == 200


def test_extra_path_needs_a_key_and_a_model_that_offers_it(gateway: GatewayProcess) -> None:
    """Without a key: 401. A model that does not list the path: 404. A path no model lists: 404."""
    assert _post(gateway, "/v1/pooling", {"model": "simulator-model"}, {}).status_code == 401
    other = _post(gateway, "/v1/pooling", {"model": "simulator-embed"}, FREE)
    assert other.status_code == 404
    assert "offers no endpoint" in other.json()["error"]["message"]
    unknown = _post(gateway, "/v1/secret", {"model": "simulator-model"}, FREE)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_url"


def test_extra_path_is_request_limited_and_not_charged_without_usage(gateway: GatewayProcess) -> None:
    """An answer without usage is charged no tokens (not guessed); the tier's request limit applies."""
    statuses = [
        _post(gateway, "/v1/classify", {"model": "quiet", "input": "x"}, FREE).status_code for _ in range(6)
    ]
    assert statuses == [200] * 5 + [429]
    row = endpoint_rows(gateway.url, "freeuser1")["/v1/classify"]
    assert (row["requests"], row["rate_limited"], row["total_tokens"]) == (6, 1, 0)


@pytest.mark.parametrize(
    "path", ["no-slash", "/v1/../admin", "/admin/keys", "/health", "/v1/models/x", "/a b"]
)
def test_extra_paths_that_are_not_further_backend_paths_are_refused(path: str) -> None:
    """A path that is not a plain path, or that is the gateway's own, fails the configuration."""
    with pytest.raises(ValidationError, match="extra_paths"):
        ModelConfig.model_validate({"name": "m", "backends": ["http://b"], "extra_paths": [path]})
