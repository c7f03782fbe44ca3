"""Reserve mode against requests built to get more out of a backend than was reserved, over real HTTP: a
gateway in front of a backend that answers completions as vLLM does (every prompt of a batch gets its
``n`` answers, each up to ``max_tokens``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory
from tests.support.limits import HOUR, wait_for_fresh_window
from tests.support.processes import ServerProcess

LIMIT = 300
FREE = {"Authorization": "Bearer freeuser1_key"}


def _reserving(backend: str) -> dict[str, Any]:
    """The demo with its chat model on ``backend`` and the free tier reserving 300 tokens an hour."""
    config = demo_dict(backend)
    config["tiers"]["free"] = {
        "reserve": True,
        "limits": [{"limit": LIMIT, "unit": "tokens", "window": "1h"}],
    }
    return config


def _complete(gateway: ServerProcess, **body: Any) -> httpx.Response:
    return httpx.post(
        gateway.url + "/v1/completions",
        json={"model": "simulator-model", **body},
        headers=FREE,
        timeout=30,
    )


@pytest.mark.parametrize(
    "prompt",
    [["Say one thing."] * 4, [[1, 2, 3]] * 4],
    ids=["texts", "token-ids"],
)
def test_a_batch_of_prompts_reserves_an_answer_for_each(
    fake_backend: ServerProcess, gateway_factory: GatewayFactory, prompt: list[Any]
) -> None:
    """A completion request with a list of 4 prompts gets 4 answers of up to max_tokens: reserve mode
    holds all 4, so asking 100 tokens each against 300 is lowered to what fits 4 times, and what the
    backend generates stays within the limit; a batch too large for the minimal answer is refused."""
    wait_for_fresh_window(HOUR)
    gateway = gateway_factory(_reserving(fake_backend.url + "/batch"))
    answered = _complete(gateway, prompt=prompt, max_tokens=100)
    assert answered.status_code == 200, answered.text
    usage = answered.json()["usage"]
    assert len(answered.json()["choices"]) == 4
    assert usage["total_tokens"] <= LIMIT, usage
    original, lowered = answered.headers["x-maas-max-tokens-clamped"].split(" -> ")
    assert original == "100"
    assert 16 <= int(lowered) <= (LIMIT - 4) // 4
    refused = _complete(gateway, prompt=["Again."] * 20, max_tokens=50)
    assert refused.status_code == 429, refused.text
    assert "tokens" in refused.json()["error"]["message"]


def test_n_and_best_of_on_completions_are_reserved(
    fake_backend: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """best_of 3 generates 3 answers even when n is 1: reserve mode holds 3 answers, lowered to fit, and
    the backend's answers stay within the limit (passes at once: an attack that was already covered)."""
    wait_for_fresh_window(HOUR)
    gateway = gateway_factory(_reserving(fake_backend.url + "/batch"))
    answered = _complete(gateway, prompt="Say one thing.", max_tokens=200, n=1, best_of=3)
    assert answered.status_code == 200, answered.text
    assert answered.json()["usage"]["total_tokens"] <= LIMIT
    assert "x-maas-max-tokens-clamped" in answered.headers


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_tokens", -5),
        ("max_tokens", 0),
        ("max_tokens", 2.5),
        ("max_tokens", "100"),
        ("max_tokens", True),
        ("n", 0),
        ("n", -1),
        ("n", 1.0),
        ("best_of", "3"),
    ],
)
def test_an_output_cap_or_answer_count_that_is_not_a_positive_integer_is_refused(
    fake_backend: ServerProcess, gateway_factory: GatewayFactory, field: str, value: Any
) -> None:
    """Negative, zero, fractional, string or boolean `max_tokens`, `n` or `best_of` is a
    400 in OpenAI's shape, and reserves nothing: the whole budget is left for the next request (passes
    at once)."""
    gateway = gateway_factory(_reserving(fake_backend.url + "/batch"))
    refused = _complete(gateway, prompt="Hi", **{field: value})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["type"] == "invalid_request_error"
    answered = _complete(gateway, prompt="Hi", max_tokens=LIMIT - 30)  # the prompt bounds 26
    assert answered.status_code == 200, answered.text
    assert "x-maas-max-tokens-clamped" not in answered.headers


def test_a_huge_output_cap_is_lowered_and_a_huge_answer_count_refused(
    fake_backend: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """`max_tokens` of 2^64-1 is lowered to what remains (and the backend stops there); `n` of 2^63 cannot
    fit even the minimal answer, so it is a 429 naming the numbers, not an overflow (passes at once)."""
    gateway = gateway_factory(_reserving(fake_backend.url + "/batch"))
    refused = _complete(gateway, prompt="Hi", max_tokens=16, n=2**63)
    assert refused.status_code == 429, refused.text
    assert "remain" in refused.json()["error"]["message"]
    answered = _complete(gateway, prompt="Hi", max_tokens=2**64 - 1)
    assert answered.status_code == 200, answered.text
    assert answered.headers["x-maas-max-tokens-clamped"].startswith(f"{2**64 - 1} -> ")
    assert answered.json()["usage"]["total_tokens"] <= LIMIT
