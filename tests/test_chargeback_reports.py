"""Chargeback reports over real HTTP: a month by team and model from `/admin/usage` and `maas usage`,
and the FOCUS-style CSV (SQLite and PostgreSQL ledgers)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from maas_gateway.admin.focus import FOCUS_COLUMNS
from tests.support.gateways import GatewayFactory
from tests.support.ledger import ADMIN, ADMIN_KEY, ledger_config
from tests.support.postgres_server import throwaway_database
from tests.support.processes import ServerProcess, maas


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with throwaway_database(request.param, tmp_path) as url:
        yield url


def _config(backend: str, database_url: str | None, spool: Path) -> dict[str, Any]:
    config = ledger_config(backend, database_url, spool)
    config["pricing"] = {"currency": "EUR"}
    config["api_keys"] += [
        {"user": "alice", "tier": "premium", "key": "alice-research-key", "team": "research"},
        {"user": "bob", "tier": "premium", "key": "bob-research-key", "team": "research"},
        {"user": "carol", "tier": "premium", "key": "carol-platform-key", "team": "platform"},
    ]
    return config


def _spend(gateway: ServerProcess) -> None:
    for key, count in (("alice-research-key", 2), ("bob-research-key", 1), ("carol-platform-key", 3)):
        with OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0) as sdk:
            for _ in range(count):
                sdk.chat.completions.create(
                    model="simulator-model", messages=[{"role": "user", "content": "Hi"}], max_tokens=3
                )
    with OpenAI(base_url=gateway.url + "/v1", api_key="freeuser1_key", max_retries=0) as sdk:
        sdk.embeddings.create(model="simulator-embed", input="no team")


def _usage(gateway: ServerProcess, **params: str) -> httpx.Response:
    return httpx.get(gateway.url + "/admin/usage", params=params, headers=ADMIN, timeout=30)


def test_a_month_by_team_and_model_and_its_focus_csv(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path, database_url: str
) -> None:
    """`month=` and `group_by=team,model` give one row per team and model with its requests and cost (two
    users of a team added up, usage without a team apart); `format=focus` gives the same costs as
    BilledCost in the configured currency over the month, the model as ResourceId and the team in Tags."""
    gateway = gateway_factory(_config(simulator.url, database_url, tmp_path / "spool"))
    _spend(gateway)
    month = datetime.now(UTC).strftime("%Y-%m")
    rows = _usage(gateway, month=month, group_by="team,model").json()["data"]
    by_team = {(row["team"], row["model"]): row for row in rows}
    assert set(by_team) == {
        ("platform", "simulator-model"),
        ("research", "simulator-model"),
        (None, "simulator-embed"),
    }
    assert by_team["research", "simulator-model"]["requests"] == 3
    assert by_team["platform", "simulator-model"]["requests"] == 3
    assert by_team["research", "simulator-model"]["cost"] > 0

    focus = _usage(gateway, month=month, group_by="team,model", format="focus")
    assert focus.headers["content-type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(focus.text)))
    assert tuple(lines[0]) == FOCUS_COLUMNS
    start = datetime.strptime(month, "%Y-%m").replace(tzinfo=UTC)
    for line in lines:
        assert line["BillingCurrency"] == "EUR"
        assert line["ChargePeriodStart"] == start.strftime("%Y-%m-%dT00:00:00Z")
        assert line["ChargePeriodEnd"] > line["ChargePeriodStart"]
        team = json.loads(line["Tags"]).get("team") if line["Tags"] else None
        assert float(line["BilledCost"]) == pytest.approx(by_team[team, line["ResourceId"]]["cost"], abs=1e-6)

    assert _usage(gateway, month="2026-13").status_code == 400
    both = _usage(gateway, month=month, since="2026-01-01")
    assert both.status_code == 400
    assert both.json()["error"]["param"] == "month"


def test_maas_usage_reports_a_month_by_team(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """`maas usage --month 2026-11 --group-by team,model` prints the teams' rows; `--focus` the CSV."""
    gateway = gateway_factory(_config(simulator.url, None, tmp_path / "spool"))
    _spend(gateway)
    month = datetime.now(UTC).strftime("%Y-%m")
    env = {**os.environ, "MAAS_ADMIN_KEY": ADMIN_KEY, "COLUMNS": "200"}

    def usage(*args: str) -> str:
        command = maas("usage", "--url", gateway.url, "--month", month, "--group-by", "team,model", *args)
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=True)
        return done.stdout

    table = usage()
    assert "research" in table
    assert "platform" in table
    assert usage("--focus").startswith(",".join(FOCUS_COLUMNS))
