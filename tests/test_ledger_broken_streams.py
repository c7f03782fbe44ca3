"""Streams a backend breaks off, and the backend that served, as the usage ledger records them: over real
HTTP, a gateway in front of simulator processes, on a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx

from tests.support.gateways import GatewayFactory
from tests.support.ledger import ADMIN, USERS, ledger_config
from tests.support.processes import ServerProcess, free_port, maas

KEY = USERS["enterpriseuser1"]
CHAT = {
    "model": "simulator-model",
    "messages": [{"role": "user", "content": "hello there"}],
    "max_tokens": 20,
}


def _usage(gateway: ServerProcess, **params: str) -> list[dict[str, Any]]:
    response = httpx.get(gateway.url + "/admin/usage", params=params, headers=ADMIN, timeout=30)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def _stream(gateway: ServerProcess) -> str:
    """One streamed chat completion; the whole text the client received."""
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        json={**CHAT, "stream": True},
        headers=headers,
        timeout=30,
    ) as response:
        assert response.status_code == 200
        return response.read().decode()


def _raw_records(database: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database) as connection:
        query = "SELECT status, broken, failed, backend, completion_tokens, charged_tokens FROM usage_records"
        return connection.execute(query).fetchall()


def test_a_stream_broken_off_by_the_backend_is_recorded_as_broken_and_charged_for_what_was_delivered(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """A simulator that cuts every stream half-way: the client gets a 200, half the tokens and an
    in-band error; the ledger counts the request as broken (not failed, not ok), charges the tokens that
    were delivered, and names the backend that served it; /admin/usage shows the broken count."""
    port = free_port()
    options = ("--port", str(port), "--failure-rate", "1", "--failure-type", "cut")
    with ServerProcess(maas("sim", *options), port, tmp_path / "sim.log") as cutting:
        database = tmp_path / "ledger.db"
        gateway = gateway_factory(
            ledger_config(cutting.url, f"sqlite+aiosqlite:///{database}", tmp_path / "spool")
        )
        text = _stream(gateway)
        assert "broke off" in text
        assert "data: [DONE]" not in text
        [row] = _usage(gateway, group_by="user")
        assert (row["requests"], row["broken"], row["failed"], row["rate_limited"]) == (1, 1, 0, 0)
        assert 0 < row["completion_tokens"] < 20  # what was delivered, not the 20 asked for
        assert row["charged_tokens"] == row["total_tokens"]
        [(status, broken, failed, backend, completion, charged)] = _raw_records(database)
        assert (status, broken, failed, backend) == (200, 1, 0, cutting.url)
        assert charged >= completion > 0


def test_a_whole_stream_is_not_broken_and_names_its_backend(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """A stream that ends with its [DONE] is ok, not broken, and records the backend that served it."""
    database = tmp_path / "ledger.db"
    gateway = gateway_factory(
        ledger_config(simulator.url, f"sqlite+aiosqlite:///{database}", tmp_path / "spool")
    )
    assert "data: [DONE]" in _stream(gateway)
    [row] = _usage(gateway, group_by="user")
    assert (row["requests"], row["broken"], row["completion_tokens"]) == (1, 0, 20)
    [(status, broken, failed, backend, _completion, _charged)] = _raw_records(database)
    assert (status, broken, failed, backend) == (200, 0, 0, simulator.url)
