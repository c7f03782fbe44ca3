"""The admin and self-service APIs fuzzed from their own OpenAPI document: no input gives a 5xx."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.gateways import GatewayFactory
from tests.support.ledger import ADMIN_KEY, ledger_config
from tests.support.processes import ServerProcess


@pytest.mark.parametrize(
    ("credential", "paths"),
    [(ADMIN_KEY, "^/admin/"), ("premiumuser1_key", "^/v1/")],
    ids=["admin", "self-service"],
)
def test_fuzzing_from_the_openapi_document_finds_no_server_error(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path, credential: str, paths: str
) -> None:
    """Schemathesis (coverage, fuzzing and stateful phases) against a running gateway: never a 5xx."""
    config = ledger_config(simulator.url, f"sqlite+aiosqlite:///{tmp_path / 'maas.db'}", tmp_path / "spool")
    # The fuzzer sends made-up credentials too; a throttled address would see only 429s from then on.
    config["security"] = {"auth_failures": {"burst": 1_000_000}}
    gateway = gateway_factory(config)
    binary = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert binary is not None, "schemathesis is a test dependency (pip install -e '.[test]')"
    result = subprocess.run(
        [
            binary,
            "run",
            gateway.url + "/admin/openapi.json",
            "--checks",
            "not_a_server_error",
            "--header",
            f"Authorization: Bearer {credential}",
            "--include-path-regex",
            paths,
            "--max-examples",
            "25",
            "--seed",
            "7",
            "--report-dir",
            str(tmp_path / "reports"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=tmp_path,  # schemathesis keeps a cache in its working directory
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in result.stdout
    assert "Traceback" not in gateway.log()
