"""The usage ledger over real HTTP, on real SQLite and PostgreSQL: totals, reports, metrics, access."""

from __future__ import annotations

import csv
import io
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory
from tests.support.ledger import ADMIN, ADMIN_KEY, USERS, ledger_config
from tests.support.load import mixed_load
from tests.support.postgres_server import throwaway_database
from tests.support.processes import ServerProcess, maas


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A real, empty ledger database: a SQLite file, or a throwaway PostgreSQL database."""
    with throwaway_database(request.param, tmp_path) as url:
        yield url


def _usage(gateway: ServerProcess, **params: str) -> list[dict[str, Any]]:
    response = httpx.get(gateway.url + "/admin/usage", params=params, headers=ADMIN, timeout=30)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def test_ledger_totals_equal_what_clients_saw(
    simulator: ServerProcess, gateway_factory: GatewayFactory, database_url: str, tmp_path: Path
) -> None:
    """After concurrent chat, streaming and embedding load, per-user ledger totals equal the usage
    every client saw, 429s included, and costs follow the model's prices."""
    gateway = gateway_factory(ledger_config(simulator.url, database_url, tmp_path / "spool"))
    seen = mixed_load(gateway.url, USERS, per_user=30)
    rows = {row["user"]: row for row in _usage(gateway, group_by="user")}
    assert set(rows) == set(USERS)
    for user in USERS:
        assert rows[user]["requests"] == seen.requests[user]
        assert rows[user]["rate_limited"] == seen.limited[user]
        assert rows[user]["prompt_tokens"] == seen.prompt[user]
        assert rows[user]["completion_tokens"] == seen.completion[user]
    assert seen.limited["freeuser1"] == 25  # 5 of 30 admitted in the 2-minute window
    by_model = {row["model"]: row for row in _usage(gateway, group_by="model")}
    chat = by_model["simulator-model"]
    expected = (chat["prompt_tokens"] * 0.5 + chat["completion_tokens"] * 1.5) / 1000
    assert chat["cost"] == pytest.approx(expected)
    assert by_model["simulator-embed"]["cost"] == 0


def test_metrics_match_the_ledger(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """Prometheus counters per user, parsed with the Prometheus text parser, agree with the ledger."""
    gateway = gateway_factory(ledger_config(simulator.url, None, tmp_path / "spool"))
    mixed_load(gateway.url, USERS, per_user=12)
    families = {
        f.name: f for f in text_string_to_metric_families(httpx.get(gateway.metrics_url + "/metrics").text)
    }
    rows = {row["user"]: row for row in _usage(gateway, group_by="user")}

    def total(family: str, user: str, **labels: str) -> float:
        return sum(
            sample.value
            for sample in families[family].samples
            if sample.name.endswith("_total")
            and sample.labels.get("user") == user
            and all(sample.labels.get(k) == v for k, v in labels.items())
        )

    for user, row in rows.items():
        assert total("authorized_calls", user) == row["requests"] - row["rate_limited"]
        assert total("limited_calls", user) == row["rate_limited"]
        assert total("maas_tokens", user, kind="prompt") == row["prompt_tokens"]
        assert total("maas_tokens", user, kind="completion") == row["completion_tokens"]
    assert "maas_request_duration_seconds" in families
    assert "maas_time_to_first_token_seconds" in families


def test_csv_export_round_trips(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """The CSV report holds the same rows and numbers as the JSON report."""
    gateway = gateway_factory(ledger_config(simulator.url, None, tmp_path / "spool"))
    mixed_load(gateway.url, USERS, per_user=6)
    params = {"group_by": "user,model,day"}
    as_json = _usage(gateway, **params)
    response = httpx.get(gateway.url + "/admin/usage", params={**params, "format": "csv"}, headers=ADMIN)
    assert response.headers["content-type"].startswith("text/csv")
    as_csv = list(csv.DictReader(io.StringIO(response.text)))
    assert len(as_csv) == len(as_json) > 0
    for text_row, json_row in zip(as_csv, as_json, strict=True):
        assert {k: str(v) for k, v in json_row.items()} == text_row


def test_users_read_only_their_own_usage(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """`/v1/usage` with a user's own key shows that user's usage and nobody else's."""
    gateway = gateway_factory(ledger_config(simulator.url, None, tmp_path / "spool"))
    mixed_load(gateway.url, USERS, per_user=3)
    response = httpx.get(
        gateway.url + "/v1/usage",
        params={"group_by": "user"},
        headers={"Authorization": "Bearer premiumuser1_key"},
    )
    assert response.status_code == 200
    assert [row["user"] for row in response.json()["data"]] == ["premiumuser1"]
    anonymous = httpx.get(gateway.url + "/v1/usage")
    assert anonymous.status_code == 401


def test_admin_api_is_closed_without_the_admin_credential(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """The admin API rejects no key and a wrong key (401) and a user's own key (403: known, not an admin);
    with no admin key configured it is off."""
    gateway = gateway_factory(ledger_config(simulator.url, None, tmp_path / "spool"))
    for headers, status in (
        ({}, 401),
        ({"Authorization": "Bearer premiumuser1_key"}, 403),
        ({"Authorization": "Bearer wrong"}, 401),
    ):
        response = httpx.get(gateway.url + "/admin/usage", headers=headers)
        assert response.status_code == status
        assert response.json()["error"]["message"].endswith(".")
    closed = gateway_factory(demo_dict(simulator.url))
    response = httpx.get(closed.url + "/admin/usage", headers=ADMIN)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "admin_disabled"
    bad = httpx.get(gateway.url + "/admin/usage", params={"group_by": "colour"}, headers=ADMIN)
    assert bad.status_code == 400
    assert "colour" in bad.json()["error"]["message"]


def test_maas_usage_cli_prints_a_table_and_csv(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """`maas usage` shows per-user, per-model usage from the admin API, as a table or as CSV."""
    gateway = gateway_factory(ledger_config(simulator.url, None, tmp_path / "spool"))
    mixed_load(gateway.url, {"premiumuser2": "premiumuser2_key"}, per_user=3)
    base = ["usage", "--url", gateway.url, "--admin-key", ADMIN_KEY]
    table = subprocess.run(maas(*base), capture_output=True, text=True, check=True, env={"COLUMNS": "200"})
    assert "premiumuser2" in table.stdout
    assert "simulator-model" in table.stdout
    as_csv = subprocess.run(maas(*base, "--csv"), capture_output=True, text=True, check=True)
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {row["model"] for row in rows} == {"simulator-model", "simulator-embed"}
    refused = subprocess.run(
        maas("usage", "--url", gateway.url, "--admin-key", "nope"),
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 1
    assert "401" in refused.stderr
