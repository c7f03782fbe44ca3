"""Reconciliation over real HTTP: a gateway reading its simulator processes' own token counters, the
ledger compared with them (`GET /admin/usage/reconcile`, `maas usage reconcile`, the drift gauge)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from openai import OpenAI
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateways import GatewayFactory
from tests.support.ledger import ADMIN, ADMIN_KEY, USERS, ledger_config
from tests.support.processes import GatewayProcess, ServerProcess, free_port, maas

KEY = USERS["enterpriseuser1"]
MODEL = "simulator-model"


def _config(backend: str, tmp_path: Path) -> dict[str, Any]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    config = ledger_config(backend, url, tmp_path / "spool", counter_interval="100ms")
    config["limits"]["enabled"] = False
    return config


def _reconcile(gateway: GatewayProcess, since: float, until: float) -> dict[str, Any]:
    response = httpx.get(
        gateway.url + "/admin/usage/reconcile",
        params={"since": str(since), "until": str(until)},
        headers=ADMIN,
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _read_after(gateway: GatewayProcess, since: float, moment: float) -> dict[str, Any]:
    """The reconciliation from ``since`` to now, once the gateway has read the counters after
    ``moment`` (waiting for that event, not for a time)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = _reconcile(gateway, since, time.time() + 1)
        rows = answer["data"]
        if rows and all(row["until"] is not None and row["until"] > moment for row in rows):
            return answer
        time.sleep(0.05)
    raise AssertionError(f"The gateway read no counters after {moment}: {answer}")


def _chat(base_url: str, key: str, count: int) -> None:
    with OpenAI(base_url=base_url + "/v1", api_key=key, max_retries=0) as sdk:
        for index in range(count):
            sdk.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"count to {index}"}], max_tokens=16
            )


def _gauge(gateway: GatewayProcess, backend: str) -> float | None:
    text = httpx.get(gateway.metrics_url + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "maas_usage_drift_ratio" and sample.labels.get("backend") == backend:
                return float(sample.value)
    return None


def _eventually(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


def test_traffic_through_the_gateway_reconciles_and_traffic_around_it_drifts(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """All traffic through the gateway: the ledger equals the simulator's own counters (drift 0, exit
    code 0). Then requests sent straight to the simulator: the drift goes over 1 %, the API flags it,
    `maas usage reconcile` exits with code 3, the gauge shows it and the gateway logs a warning."""
    port = free_port()
    with ServerProcess(maas("sim", "--port", str(port)), port, tmp_path / "sim.log") as simulator:
        gateway = gateway_factory(_config(simulator.url, tmp_path))
        start = time.time()
        _read_after(gateway, start - 60, start)  # a reading before any traffic
        _chat(gateway.url, KEY, 20)
        answer = _read_after(gateway, start, time.time())
        [row] = answer["data"]
        assert (row["backend"], row["model"], row["ledger_requests"]) == (simulator.url, MODEL, 20)
        assert row["ledger_prompt_tokens"] == row["backend_prompt_tokens"] > 0
        assert row["ledger_completion_tokens"] == row["backend_generation_tokens"] > 0
        assert (row["drift_ratio"], row["warning"], answer["warnings"]) == (0, False, 0)
        env = {**os.environ, "MAAS_ADMIN_KEY": ADMIN_KEY}
        command = [*maas("usage", "reconcile", "--url", gateway.url, "--since", str(start)), "--json"]
        assert subprocess.run(command, env=env, capture_output=True, check=False).returncode == 0

        _chat(simulator.url, "any", 5)  # around the gateway: the backend counts, the ledger does not
        answer = _read_after(gateway, start, time.time())
        [row] = answer["data"]
        assert row["backend_prompt_tokens"] > row["ledger_prompt_tokens"]
        assert row["drift_ratio"] > 0.01
        assert (row["warning"], answer["warnings"]) == (True, 1)
        table = subprocess.run(
            maas("usage", "reconcile", "--url", gateway.url, "--since", str(start)),
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert table.returncode == 3, table.stderr
        assert "drift over 1 %" in table.stderr
        _eventually(lambda: (_gauge(gateway, simulator.url) or 0) > 0.01)
        _eventually(lambda: "drifts" in gateway.log())


def test_a_backend_restart_mid_period_is_counted_as_a_reset(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """The simulator restarts between two batches of traffic: its counters start again from zero, the
    reconciliation counts one reset and the ledger still equals what the two runs counted."""
    port = free_port()
    command = maas("sim", "--port", str(port))
    first = ServerProcess(command, port, tmp_path / "sim-1.log").start()
    try:
        gateway = gateway_factory(_config(first.url, tmp_path))
        start = time.time()
        _read_after(gateway, start - 60, start)
        _chat(gateway.url, KEY, 10)
        _read_after(gateway, start, time.time())  # the first run's count is read before it stops
    finally:
        first.stop()
    with ServerProcess(command, port, tmp_path / "sim-2.log") as second:
        restarted = time.time()
        _read_after(gateway, start, restarted)
        _chat(gateway.url, KEY, 3)
        answer = _read_after(gateway, start, time.time())
        [row] = answer["data"]
        assert (row["backend"], row["resets"], row["ledger_requests"]) == (second.url, 1, 13)
        assert row["ledger_prompt_tokens"] == row["backend_prompt_tokens"]
        assert row["ledger_completion_tokens"] == row["backend_generation_tokens"]
        assert (row["drift_ratio"], row["warning"]) == (0, False)


def test_the_reconcile_endpoint_is_for_admins_and_refuses_bad_periods(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """Without the admin key, or with a user's key, the reconciliation is refused; a period that is not
    one (a start that is not a time, a start after the end) is a 400 in the OpenAI error shape."""
    gateway = gateway_factory(_config(simulator.url, tmp_path))
    url = gateway.url + "/admin/usage/reconcile"
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Bearer {KEY}"}, timeout=10).status_code in (401, 403)
    for params, param in (
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-12-02", "until": "2026-12-01"}, "since"),
    ):
        response = httpx.get(url, params=params, headers=ADMIN, timeout=10)
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["type"], error["param"]) == ("invalid_request_error", param)
        assert error["message"].endswith(".")
    assert httpx.get(url, headers=ADMIN, timeout=10).json()["object"] == "list"
