"""Live reconfiguration keeps counters; a client that leaves a stream early pays for what was generated."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import yaml

from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory
from tests.support.limits import chat, wait_for_fresh_window
from tests.support.processes import ServerProcess, free_port, maas


def _wait_for(server: ServerProcess, text: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.log():
        assert time.monotonic() < deadline, f"{text!r} never appeared in the log:\n{server.log()}"
        time.sleep(0.05)


def test_reload_applies_new_limits_and_keys_without_resetting_counters(
    simulator: ServerProcess, tmp_path: Path
) -> None:
    """As soon as `maas reload` returns, a lowered limit counts the requests already made and a new key
    works; `maas reload` of an invalid file exits 1 with the reason, and the gateway keeps its keys."""
    config = demo_dict(simulator.url)
    port = free_port()
    config["server"]["port"] = port
    config["metrics"] = {"listen": f"127.0.0.1:{free_port()}"}
    path, pid_file = tmp_path / "gateway.yaml", tmp_path / "gateway.pid"
    path.write_text(yaml.safe_dump(config), "utf-8")
    wait_for_fresh_window()
    args = maas("serve", "--config", str(path), "--pid-file", str(pid_file))
    with ServerProcess(args, port, tmp_path / "gateway.log") as gateway:
        for _ in range(3):
            assert chat(gateway.url, "freeuser1_key", max_tokens=1).status_code == 200
        config["tiers"]["free"]["limits"][0]["limit"] = 4
        config["api_keys"].append({"user": "newcomer", "tier": "free", "key": "newcomer_key_1"})
        path.write_text(yaml.safe_dump(config), "utf-8")
        result = subprocess.run(
            maas("reload", "--pid-file", str(pid_file)), capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        assert "serves the new configuration" in result.stdout
        assert chat(gateway.url, "freeuser1_key", max_tokens=1).status_code == 200
        limited = chat(gateway.url, "freeuser1_key", max_tokens=1)
        assert limited.status_code == 429
        assert "4 requests per 2m" in limited.json()["error"]["message"]
        assert chat(gateway.url, "newcomer_key_1", max_tokens=1).status_code == 200

        path.write_text("tiers: {}\n", "utf-8")
        refused = subprocess.run(
            maas("reload", "--pid-file", str(pid_file)), capture_output=True, text=True, check=False
        )
        assert refused.returncode == 1
        assert "keeps serving the previous one" in refused.stderr
        assert "gateway.yaml is invalid: models: Field required; tiers: " in refused.stderr
        assert chat(gateway.url, "newcomer_key_1", max_tokens=1).status_code == 200


def test_maas_reload_by_process_id_signals_without_waiting(
    simulator: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """`maas reload --pid` cannot find the gateway's reload reports, so it sends SIGHUP, says it does not
    wait, and exits 0; the gateway reloads all the same."""
    gateway = gateway_factory(demo_dict(simulator.url))
    assert gateway.process is not None
    result = subprocess.run(
        maas("reload", "--pid", str(gateway.process.pid)), capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Not waiting" in result.stdout
    _wait_for(gateway, "Reloaded")


def test_client_leaving_a_stream_is_charged_for_what_was_generated(
    gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """Closing a slow stream early charges the tokens generated so far, not the whole max_tokens."""
    port = free_port()
    slow_sim = ServerProcess(maas("sim", "--port", str(port), "--itl", "0.02"), port, tmp_path / "sim.log")
    with slow_sim:
        wait_for_fresh_window(needed=30)
        gateway = gateway_factory(demo_dict(slow_sim.url))
        body = {
            "model": "simulator-model",
            "stream": True,
            "max_tokens": 200,
            "messages": [{"role": "user", "content": "Hello"}],
        }
        events = 0
        with httpx.stream(
            "POST",
            gateway.url + "/v1/chat/completions",
            json=body,
            headers={"Authorization": "Bearer enterpriseuser1_key"},
            timeout=30,
        ) as response:
            for line in response.iter_lines():
                events += line.startswith("data:")
                if events >= 10:
                    break
        time.sleep(0.5)
        after = chat(gateway.url, "enterpriseuser1_key", max_tokens=1)
        charged_for_stream = 5000 - 11 - int(after.headers["x-ratelimit-remaining-tokens"])
        assert 10 <= charged_for_stream < 100, charged_for_stream
        _wait_for(gateway, '"client_disconnected":true')
