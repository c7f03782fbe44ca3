"""The admin API and the self-service key API against hostile input, over real HTTP on SQLite and
PostgreSQL: text no database row can hold and times no clock can reach are 400s in the API's own shape,
never a 500."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.gateways import GatewayFactory
from tests.support.ledger import ADMIN, ledger_config
from tests.support.polling import wait_until
from tests.support.postgres_server import throwaway_database
from tests.support.processes import ServerProcess

MEMBER = {"Authorization": "Bearer premiumuser1_key"}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with throwaway_database(request.param, tmp_path) as url:
        yield url


def _refused(response: httpx.Response, param: str | None) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"].endswith(".")


def test_a_nul_character_is_refused_wherever_it_is_sent(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path, database_url: str
) -> None:
    """PostgreSQL's text cannot hold U+0000: a NUL in a path, a query parameter or a JSON body (a team,
    a member, a user, a key's name, even from a user's own key) is a 400 naming the parameter, on SQLite
    alike, and nothing is stored."""
    gateway = gateway_factory(ledger_config(simulator.url, database_url, tmp_path / "spool"))

    def admin(method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, gateway.url + path, headers=ADMIN, timeout=30, **kwargs)

    assert admin("POST", "/admin/teams", json={"name": "research"}).status_code == 201
    _refused(admin("GET", "/admin/teams/a%00b"), "name")
    _refused(admin("DELETE", "/admin/teams/a%00b"), "name")
    _refused(admin("POST", "/admin/teams/research/members", json={"user": "a\x00b"}), "user")
    _refused(admin("DELETE", "/admin/teams/research/members/a%00b"), "user")
    _refused(admin("GET", "/admin/usage", params={"user": "a\x00b"}), "user")
    _refused(admin("GET", "/admin/keys", params={"user": "a\x00b"}), "user")
    _refused(admin("POST", "/admin/users", json={"user": "a\x00b", "tier": "free"}), "user")
    _refused(admin("POST", "/admin/teams", json={"name": "ok", "display_name": "a\x00b"}), "display_name")
    own = httpx.post(gateway.url + "/v1/keys", json={"name": "a\x00b"}, headers=MEMBER, timeout=30)
    _refused(own, "name")
    assert admin("GET", "/admin/teams/research").json()["members"] == []
    assert [team["name"] for team in admin("GET", "/admin/teams").json()["data"]] == ["research"]
    listed = admin("GET", "/admin/keys", params={"user": "premiumuser1"}).json()["data"]
    assert listed == []


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"since": "nan"}, "since"),
        ({"until": "inf"}, "until"),
        ({"since": "1e308"}, "since"),
        ({"since": "-1e20"}, "since"),
        ({"until": "99999999999999999999"}, "until"),
    ],
)
def test_a_time_no_clock_reaches_is_refused(
    simulator: ServerProcess,
    gateway_factory: GatewayFactory,
    tmp_path: Path,
    params: dict[str, str],
    param: str,
) -> None:
    """`since` and `until` of the usage report, the reconciliation and the audit log must be finite Unix
    seconds between the epoch and the year 9999: NaN, infinity or 1e20 is a 400 naming the parameter."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'maas.db'}"
    gateway = gateway_factory(ledger_config(simulator.url, url, tmp_path / "spool"))
    for path in ("/admin/usage", "/admin/usage/reconcile", "/admin/audit"):
        response = httpx.get(gateway.url + path, params=params, headers=ADMIN, timeout=30)
        _refused(response, param)
    fine = httpx.get(gateway.url + "/admin/usage", params={"since": "0"}, headers=ADMIN, timeout=30)
    assert fine.status_code == 200, fine.text


def test_a_user_name_that_a_spreadsheet_would_run_is_quoted_in_every_csv(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """A user named `=2+5+cmd|...` (an administrator may create any name without ':') spends tokens:
    the admin API's plain CSV and its FOCUS CSV both show the name quoted as text (`'=...`), never as a
    cell a spreadsheet runs."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'maas.db'}"
    gateway = gateway_factory(ledger_config(simulator.url, url, tmp_path / "spool"))
    hostile = "=2+5+cmd|' /C calc'!A0"
    created = httpx.post(
        gateway.url + "/admin/keys",
        json={"user": hostile, "tier": "free", "name": "sheet"},
        headers=ADMIN,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    chat = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "simulator-model", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2},
        headers={"Authorization": f"Bearer {created.json()['key']}"},
        timeout=30,
    )
    assert chat.status_code == 200, chat.text

    def report(form: str) -> list[list[str]]:
        response = httpx.get(
            gateway.url + "/admin/usage",
            params={"group_by": "user,model", "format": form},
            headers=ADMIN,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return list(csv.reader(io.StringIO(response.text)))

    wait_until(lambda: len(report("csv")) == 2, "the request in the ledger")
    plain = report("csv")
    assert plain[1][0] == "'" + hostile
    focus = report("focus")
    tags = focus[1][focus[0].index("Tags")]
    assert tags.startswith("{")
    assert json.loads(tags)["user"] == hostile
    every_cell = [cell for row in plain[1:] + focus[1:] for cell in row]
    assert not any(cell.startswith(("=", "+", "@")) for cell in every_cell)
