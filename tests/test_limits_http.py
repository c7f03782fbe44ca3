"""The origin system's limit scenarios over real HTTP, against a gateway and the simulator on loopback."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from maas_gateway.limits.windows import calendar_bounds
from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory
from tests.support.limits import HOUR, chat, concurrent_statuses, long_windows, wait_for_fresh_window
from tests.support.processes import ServerProcess


@pytest.fixture
def demo(simulator: ServerProcess, gateway_factory: GatewayFactory) -> ServerProcess:
    """A fresh demo gateway (fresh counters) with its windows 60 times as long (2m: 2h, 1m: 1h), started
    well inside them, so no count straddles a window's end."""
    wait_for_fresh_window(HOUR)
    return gateway_factory(long_windows(demo_dict(simulator.url)))


def test_free_user_gets_five_requests_then_429_twice(demo: ServerProcess) -> None:
    """A free user gets 5 requests per window; the 6th and 7th are 429 with Retry-After, within it."""
    statuses = [chat(demo.url, "freeuser1_key", max_tokens=1).status_code for _ in range(5)]
    assert statuses == [200] * 5
    for _ in range(2):
        limited = chat(demo.url, "freeuser1_key", max_tokens=1)
        assert limited.status_code == 429
        error = limited.json()["error"]
        assert error["type"] == "rate_limit_error"
        assert "5 requests per 2h" in error["message"]
        assert 1 <= int(limited.headers["retry-after"]) <= 2 * HOUR
        assert limited.headers["x-ratelimit-remaining-requests"] == "0"


def test_second_free_user_is_unaffected(demo: ServerProcess) -> None:
    """Counters are per user: one free user's 429 leaves another free user untouched."""
    for _ in range(5):
        chat(demo.url, "freeuser1_key", max_tokens=1)
    assert chat(demo.url, "freeuser1_key", max_tokens=1).status_code == 429
    response = chat(demo.url, "freeuser2_key", max_tokens=1)
    assert response.status_code == 200
    assert response.headers["x-ratelimit-remaining-requests"] == "4"


def test_premium_user_gets_twenty(demo: ServerProcess) -> None:
    """A premium user gets 20 requests per window, then 429."""
    statuses = [chat(demo.url, "premiumuser1_key", max_tokens=1).status_code for _ in range(21)]
    assert statuses == [200] * 20 + [429]


def test_models_and_health_are_never_limited(demo: ServerProcess) -> None:
    """A user who is rate limited can still list models; health needs no quota."""
    for _ in range(6):
        chat(demo.url, "freeuser1_key", max_tokens=1)
    models = httpx.get(demo.url + "/v1/models", headers={"Authorization": "Bearer freeuser1_key"})
    assert models.status_code == 200
    assert httpx.get(demo.url + "/health").status_code == 200


def test_token_headers_follow_usage_and_429_comes_when_the_window_is_spent(demo: ServerProcess) -> None:
    """Each answer's token headers match its usage; the first 429 comes exactly when 200 tokens are spent."""
    spent = 0
    for _ in range(4):
        response = chat(demo.url, "freeuser2_key", max_tokens=40)
        assert response.status_code == 200
        usage = response.json()["usage"]
        spent += usage["total_tokens"]
        assert int(response.headers["x-ratelimit-consumed-tokens"]) == usage["total_tokens"] == 50
        assert response.headers["x-ratelimit-limit-tokens"] == "200"
        assert int(response.headers["x-ratelimit-remaining-tokens"]) == 200 - spent
    limited = chat(demo.url, "freeuser2_key", max_tokens=1)
    assert limited.status_code == 429
    assert "200 tokens per 1h" in limited.json()["error"]["message"]
    assert limited.headers["x-ratelimit-remaining-tokens"] == "0"
    # The rejected request did not count against the request window (4 of 5 used).
    assert limited.headers["x-ratelimit-remaining-requests"] == "1"


def test_streamed_answers_are_charged(demo: ServerProcess) -> None:
    """A stream is charged its usage even when the client did not ask to see it."""
    with httpx.stream(
        "POST",
        demo.url + "/v1/chat/completions",
        headers={"Authorization": "Bearer premiumuser2_key"},
        json={
            "model": "simulator-model",
            "stream": True,
            "max_tokens": 90,
            "messages": [{"role": "user", "content": "Hello"}],
        },
    ) as response:
        assert response.status_code == 200
        body = "".join(response.iter_text())
    assert '"usage"' not in body
    after = chat(demo.url, "premiumuser2_key", max_tokens=1)
    assert int(after.headers["x-ratelimit-remaining-tokens"]) == 1000 - 100 - 11


def test_concurrent_enterprise_burst_admits_exactly_one_hundred(demo: ServerProcess) -> None:
    """130 simultaneous requests from one enterprise user: exactly 100 are admitted."""
    statuses = Counter(concurrent_statuses(demo.url, ["enterpriseuser1_key"] * 130, max_tokens=1))
    assert statuses == Counter({200: 100, 429: 30})


def test_concurrent_free_burst_admits_exactly_five(demo: ServerProcess) -> None:
    """60 simultaneous requests from one free user: exactly 5 are admitted."""
    statuses = Counter(concurrent_statuses(demo.url, ["freeuser1_key"] * 60, max_tokens=1))
    assert statuses == Counter({200: 5, 429: 55})


def test_multiplier_and_per_model_scope(simulator: ServerProcess, gateway_factory: GatewayFactory) -> None:
    """A 2x model is charged double; a limit scoped to one model does not touch another."""
    config = long_windows(demo_dict(simulator.url))
    config["models"].append(
        {
            "name": "big-model",
            "backends": [simulator.url],
            "served_name": "simulator-model",
            "token_multiplier": 2.0,
        }
    )
    config["tiers"]["premium"]["limits"].append(
        {"limit": 2, "unit": "requests", "window": "1h", "model": "big-model"}
    )
    wait_for_fresh_window(HOUR)
    gateway = gateway_factory(config)
    big = chat(gateway.url, "premiumuser1_key", model="big-model", max_tokens=5)
    assert big.json()["usage"]["total_tokens"] == 15
    assert big.headers["x-ratelimit-consumed-tokens"] == "30"
    assert chat(gateway.url, "premiumuser1_key", model="big-model", max_tokens=5).status_code == 200
    third = chat(gateway.url, "premiumuser1_key", model="big-model", max_tokens=5)
    assert third.status_code == 429
    assert "on model 'big-model'" in third.json()["error"]["message"]
    assert chat(gateway.url, "premiumuser1_key", max_tokens=5).status_code == 200


def test_completion_token_limit_counts_output_only(
    simulator: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """A `completion_tokens` limit is spent by output tokens alone, and headers stand in for it."""
    config = demo_dict(simulator.url)
    config["tiers"]["free"]["limits"] = [{"limit": 25, "unit": "completion_tokens", "window": "1h"}]
    wait_for_fresh_window(HOUR)
    gateway = gateway_factory(config)
    first = chat(gateway.url, "freeuser1_key", max_tokens=20)
    assert first.headers["x-ratelimit-remaining-tokens"] == "5"
    assert chat(gateway.url, "freeuser1_key", max_tokens=20).status_code == 200
    assert chat(gateway.url, "freeuser1_key", max_tokens=1).status_code == 429


def test_reserve_mode_never_lets_a_user_exceed(
    simulator: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """With reserve on, a request whose worst case does not fit is refused: usage never passes the limit."""
    config = demo_dict(simulator.url)
    config["tiers"]["free"] = {
        "reserve": True,
        "reserve_default_max_tokens": 50,
        "limits": [{"limit": 150, "unit": "tokens", "window": "1h"}],
    }
    wait_for_fresh_window(HOUR)
    gateway = gateway_factory(config)
    used = 0
    statuses = []
    for _ in range(6):
        response = chat(gateway.url, "freeuser1_key", max_tokens=40)
        statuses.append(response.status_code)
        if response.status_code == 200:
            used += response.json()["usage"]["total_tokens"]
    assert used <= 150
    assert statuses[0] == 200
    assert statuses[-1] == 429
    # Without max_tokens the gateway caps output at the reserved default, so the bound still holds.
    fresh = chat(gateway.url, "freeuser2_key")
    assert fresh.json()["usage"]["completion_tokens"] == 50


def test_a_calendar_month_in_a_time_zone_resets_at_its_local_midnight(
    simulator: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """`window: month` with `limits.timezone: Europe/Berlin`: the token headers count down to midnight on
    the 1st of next month in Berlin, and the limit names its zone when it refuses."""
    config = demo_dict(simulator.url)
    config["limits"] = {**config.get("limits", {}), "timezone": "Europe/Berlin"}
    config["tiers"]["free"]["limits"] = [{"limit": 40, "unit": "tokens", "window": "month"}]
    gateway = gateway_factory(config)
    zone = ZoneInfo("Europe/Berlin")
    before = time.time()
    first = chat(gateway.url, "freeuser1_key", max_tokens=30)
    after = time.time()
    end_before = calendar_bounds(before, "month", zone)[1]
    end_after = calendar_bounds(after, "month", zone)[1]
    reset = int(first.headers["x-ratelimit-reset-tokens"].removesuffix("s"))
    assert end_after - after <= reset <= end_before - before + 1
    assert datetime.fromtimestamp(end_after, zone).timetuple()[2:6] == (1, 0, 0, 0)  # the 1st, 00:00
    refused = chat(gateway.url, "freeuser1_key", max_tokens=30)
    assert refused.status_code == 429
    assert "40 tokens per month (Europe/Berlin)" in refused.json()["error"]["message"]
