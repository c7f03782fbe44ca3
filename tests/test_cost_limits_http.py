"""Money budgets over real HTTP with the official `openai` SDK: a gateway, the simulator and a SQLite
ledger on loopback; a price change applied by reload mid-month."""

from __future__ import annotations

import signal
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml
from openai import OpenAI

from maas_gateway.pricing import PriceVersion
from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory
from tests.support.polling import wait_until
from tests.support.processes import GatewayProcess, ServerProcess

KEY = "metered-user-key-0123"
JAN = "2026-01-01T00:00:00Z"  # the first price version's name in the ledger
INPUT, OUTPUT = 1000.0, 2000.0  # per million tokens: $0.001 and $0.002 a token


def _config(backend: str, ledger: Path, spool: Path) -> dict[str, Any]:
    config = demo_dict(backend)
    config["models"][0]["prices"] = [
        {"effective_from": "2026-01-01", "input_per_million": INPUT, "output_per_million": OUTPUT}
    ]
    config["tiers"]["metered"] = {"limits": [{"limit": 0.1, "unit": "cost", "window": "month"}]}
    config["api_keys"].append({"user": "meter", "tier": "metered", "key": KEY})
    config["database"] = {
        "url": f"sqlite+aiosqlite:///{ledger}",
        "spool_dir": str(spool),
        "flush_interval": "0.2s",
    }
    return config


def _micros(prompt: int, completion: int, input_price: float = INPUT, output_price: float = OUTPUT) -> int:
    return round(prompt * input_price + completion * output_price)


def _records(ledger: Path) -> list[tuple[str, str, float, int, int]]:
    with sqlite3.connect(ledger) as connection:
        return list(
            connection.execute(
                "SELECT request_id, price_version, cost, prompt_tokens, completion_tokens FROM usage_records"
                " WHERE user = 'meter' AND status = 200 ORDER BY created_at"
            )
        )


def test_a_money_budget_refuses_after_the_spend(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """Each answer reports the money left in `x-ratelimit-remaining-cost` (the budget less every
    request's tokens at the price); once $0.10 is spent the next request is refused, and the 429 names
    the money and the budget."""
    gateway = gateway_factory(_config(simulator.url, tmp_path / "maas.db", tmp_path / "spool"))
    spent = 0
    with OpenAI(base_url=gateway.url + "/v1", api_key=KEY, max_retries=0) as sdk:
        for _ in range(100):
            try:
                raw = sdk.chat.completions.with_raw_response.create(
                    model="simulator-model", messages=[{"role": "user", "content": "Hello"}], max_tokens=10
                )
            except openai.RateLimitError as refused:
                message = str(refused.body["message"]) if isinstance(refused.body, dict) else str(refused)
                break
            usage = raw.parse().usage
            assert usage is not None
            spent += _micros(usage.prompt_tokens, usage.completion_tokens)
            assert raw.headers["x-ratelimit-limit-cost"] == "0.100000"
            left = max(0, 100_000 - spent)
            assert raw.headers["x-ratelimit-remaining-cost"] == f"0.{left:06d}"
        else:
            pytest.fail("The budget never refused a request.")
    assert spent >= 100_000  # refused only once spent: the default mode charges after the answer
    assert "Cost limit reached for user 'meter' on the 'metered' tier: $0.00 remain of" in message
    assert "the $0.10 budget per month" in message


def _reload(gateway: GatewayProcess, path: Path, config: dict[str, Any]) -> None:
    before = gateway.log().count("Reloaded")
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text("utf-8")), **config}), "utf-8")
    assert gateway.process is not None
    gateway.process.send_signal(signal.SIGHUP)
    wait_until(lambda: gateway.log().count("Reloaded") > before, "the reload in the log")


def test_a_price_change_mid_month_charges_new_requests_and_leaves_old_records_alone(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """A second price version, effective from just after the first request, is added by reload: the
    first request's record keeps the January version and its cost, the next is recorded and charged at
    the new version, and the budget left is the budget less both at their own prices."""
    ledger = tmp_path / "maas.db"
    config = _config(simulator.url, ledger, tmp_path / "spool")
    gateway = gateway_factory(config)
    messages: Any = [{"role": "user", "content": "Hello"}]
    with OpenAI(base_url=gateway.url + "/v1", api_key=KEY, max_retries=0) as sdk:
        first = sdk.chat.completions.with_raw_response.create(
            model="simulator-model", messages=messages, max_tokens=5
        )
        changed = datetime.now(UTC)  # after the first request arrived, before the second
        config["models"][0]["prices"].append(
            {"effective_from": changed.isoformat(), "input_per_million": 3000.0, "output_per_million": 9000.0}
        )
        (written,) = tmp_path.glob("gateway-*.yaml")  # the file the gateway was started from
        _reload(gateway, written, {"models": config["models"]})
        second = sdk.chat.completions.with_raw_response.create(
            model="simulator-model", messages=messages, max_tokens=5
        )
    wait_until(lambda: len(_records(ledger)) == 2, "both requests in the ledger")
    (one, version_one, cost_one, p1, c1), (two, version_two, cost_two, p2, c2) = _records(ledger)
    assert (one, two) == (first.headers["x-request-id"], second.headers["x-request-id"])
    assert version_one == JAN
    assert version_two == PriceVersion(changed.timestamp()).name
    assert cost_one == pytest.approx(_micros(p1, c1) / 1e6)
    assert cost_two == pytest.approx(_micros(p2, c2, 3000.0, 9000.0) / 1e6)
    left = 100_000 - _micros(p1, c1) - _micros(p2, c2, 3000.0, 9000.0)
    assert second.headers["x-ratelimit-remaining-cost"] == f"0.{left:06d}"
