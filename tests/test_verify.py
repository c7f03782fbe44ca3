"""`maas verify`: the origin's installation checks, against a local `maas up` and misconfigured gateways."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory
from tests.support.processes import ServerProcess, free_port, maas


def _verify(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        maas("verify", *args), capture_output=True, text=True, check=False, env=env, timeout=120
    )


@pytest.fixture
def up(tmp_path: Path) -> Iterator[ServerProcess]:
    """`maas up` on free ports: the demo gateway and simulator exactly as a user starts them."""
    port, sim_port = free_port(), free_port()
    command = maas("up", "--port", str(port), "--sim-port", str(sim_port), "--metrics-port", str(free_port()))
    with ServerProcess(command, port, tmp_path / "up.log") as server:
        yield server


def test_verify_passes_against_maas_up(up: ServerProcess) -> None:
    """With no key given, verify uses the demo keys and every check passes against `maas up`: health,
    readiness, 401 without or with a wrong key, 200 per tier, headers, and 429 on both limits."""
    result = _verify("--url", up.url)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "No key given: checking with the demo keys of `maas up`." in out
    for check in (
        "GET /health",
        "GET /ready",
        "no key is refused",
        "a wrong key is refused",
        "200 with the free key",
        "200 with the premium key",
        "200 with the enterprise key",
        "rate-limit headers present",
    ):
        assert check in out
    assert "429 (request limit) at request 6 with the free key (limit 5); Retry-After" in out
    assert "429 (token limit) after" in out
    assert "with the premium key (limit 1000)" in out
    assert "All 11 checks passed." in out
    assert "FAIL" not in out
    assert "SKIP" not in out


def test_verify_run_again_within_the_window_recognises_the_spent_quota(up: ServerProcess) -> None:
    """A second run right after the first finds the free and premium keys refused at once; it says their
    quota was spent by an earlier run, counts those 429s as limits reached, and fails nothing."""
    assert _verify("--url", up.url).returncode == 0
    again = _verify("--url", up.url)
    out = again.stdout
    assert again.returncode == 0, out + again.stderr
    assert "FAIL" not in out
    assert "this window's quota is already spent" in out
    assert "429 (request limit) at once with the free key, whose quota an earlier run spent" in out
    assert "429 (token limit) at once with the premium key, whose quota an earlier run spent" in out


def test_verify_fails_with_a_clear_line_when_limits_are_off(
    simulator: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """Against a gateway whose limits are off, the access checks pass but the limit checks fail, each
    with one line saying that limits are not enforced, and verify exits 1."""
    gateway = gateway_factory(demo_dict(simulator.url, limits=False))
    result = _verify("--url", gateway.url, "--max-requests", "8")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert (
        "FAIL request limit reached: No 429 after 8 requests with the free key: request limits are not "
        "enforced (is limits.enabled false in the gateway's configuration?)."
    ) in lines
    assert any(line.startswith("FAIL token limit reached: No 429 after 8 requests (") for line in lines)
    assert any(
        line.startswith("FAIL rate-limit headers present: The answer to the free key lacks") for line in lines
    )
    assert "3 of 11 checks failed." in lines
    assert not any(
        line.startswith(("FAIL GET", "FAIL 200", "FAIL no key", "FAIL a wrong key")) for line in lines
    )


def test_one_key_checks_request_limits_and_skips_token_limits(
    simulator: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """With a single key, the request limit is checked on it and the token check is skipped (the key has
    no requests left), which is not a failure; keys given with --key are numbered."""
    gateway = gateway_factory(demo_dict(simulator.url))
    result = _verify("--url", gateway.url, "--key", "freeuser2_key")
    assert result.returncode == 0, result.stdout
    assert "429 (request limit) at request 6 with key #1 (limit 5)" in result.stdout
    assert "SKIP" in result.stdout
    assert "Give a second key to check token limits" in result.stdout


def test_a_key_the_gateway_refuses_fails_its_check(
    simulator: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """A key the gateway does not know fails the 200 check with the gateway's own reason."""
    gateway = gateway_factory(demo_dict(simulator.url))
    result = _verify(
        "--url", gateway.url, "--free-key", "nobody-has-this-key", "--premium-key", "premiumuser2_key"
    )
    assert result.returncode == 1
    failures = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failures) == 1
    assert failures[0].startswith("FAIL 200 with the free key: 401 instead of 200: ")


def test_an_unreachable_gateway_fails_at_once() -> None:
    """Nothing listening at the URL gives one failing check that names the URL."""
    url = f"http://127.0.0.1:{free_port()}"
    result = _verify("--url", url, "--timeout", "5")
    assert result.returncode == 1
    assert f"FAIL gateway reachable: Cannot reach the gateway: GET {url}/health failed:" in result.stdout
