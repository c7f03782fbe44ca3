"""Reloading `maas serve --workers N`: every worker reloads in place, and `maas reload` waits for them."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from maas_gateway.cli.main import app
from tests.support.configs import demo_dict
from tests.support.load import Load
from tests.support.processes import ServerProcess, free_port, maas
from tests.support.reloads import answers_for_new_key, worker_pids

LIMIT = 1_000_000  # requests per 2 minutes in the tier of the test's keys: never reached


def _config(simulator: ServerProcess) -> dict[str, Any]:
    """The demo configuration, plus a tier whose only limit is a large request count, and a user in it."""
    config = demo_dict(simulator.url)
    config["server"]["port"] = free_port()
    config["metrics"] = {"listen": f"127.0.0.1:{free_port()}"}
    config["tiers"]["bulk"] = {"limits": [{"limit": LIMIT, "unit": "requests", "window": "2m"}]}
    config["api_keys"].append({"user": "loader", "tier": "bulk", "key": "loader_key"})
    return config


def _serve_workers(config: dict[str, Any], tmp_path: Path) -> ServerProcess:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config), "utf-8")
    args = maas("serve", "--config", str(path), "--workers", "2", "--pid-file", str(tmp_path / "gateway.pid"))
    return ServerProcess(args, config["server"]["port"], tmp_path / "gateway.log")


def _add_key(config: dict[str, Any], tmp_path: Path, name: str) -> str:
    config["api_keys"].append({"user": name, "tier": "bulk", "key": f"{name}_key"})
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(config), "utf-8")
    return f"{name}_key"


def _reload(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    command = maas("reload", "--pid-file", str(tmp_path / "gateway.pid"), *options)
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_reloads_under_load_fail_no_request_and_apply_before_maas_reload_returns(
    simulator: ServerProcess, tmp_path: Path
) -> None:
    """Under keep-alive load on two workers, 20 `maas reload`s (each adding a key) fail no request, and
    as soon as each returns, its new key answers 200 on fresh connections from both workers.

    `maas reload` runs in this process (typer's runner): 20 interpreter starts would cost most of a minute
    on a busy two-core machine; the command line itself is run as a process by the other tests.
    """
    config = _config(simulator)
    runner = CliRunner()
    pid_file = str(tmp_path / "gateway.pid")
    with _serve_workers(config, tmp_path) as gateway, Load(gateway.url, key="loader_key") as load:
        for attempt in range(20):
            key = _add_key(config, tmp_path, f"added{attempt}")
            result = runner.invoke(app, ["reload", "--pid-file", pid_file])
            assert result.exit_code == 0, result.output
            answers = answers_for_new_key(gateway.url, key, LIMIT, workers=2)
            assert set(answers.statuses) == {200}, (attempt, answers.statuses)
            assert answers.workers == 2, (attempt, answers)
        answered_during_reloads = len(load.answered)
    assert load.failures == []
    assert answered_during_reloads > 100, answered_during_reloads
    assert "Reloaded" in gateway.log()


def test_a_refused_file_or_a_silent_worker_fails_maas_reload_and_the_gateway_keeps_serving(
    simulator: ServerProcess, tmp_path: Path
) -> None:
    """An invalid file: `maas reload` exits 1 with one line naming the problem, and both workers keep the
    previous configuration. A worker that does not answer: it exits 1 after --timeout."""
    config = _config(simulator)
    with _serve_workers(config, tmp_path) as gateway:
        known = _add_key(config, tmp_path, "known")
        assert _reload(tmp_path).returncode == 0
        config["api_keys"].append({"user": "golden", "tier": "gold", "key": "golden_key"})
        (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(config), "utf-8")

        refused = _reload(tmp_path)
        assert refused.returncode == 1
        assert refused.stderr.count("\n") == 1, refused.stderr
        assert "refused the configuration file and keeps serving the previous one" in refused.stderr
        assert "unknown tier 'gold'" in refused.stderr
        previous = answers_for_new_key(gateway.url, known, LIMIT, workers=2)
        assert set(previous.statuses) == {200}, previous
        assert previous.workers == 2, previous
        assert gateway.log().count("Reload refused") == 2

        assert gateway.process is not None
        stopped = worker_pids(gateway.process.pid)[0]
        os.kill(stopped, signal.SIGSTOP)
        try:
            silent = _reload(tmp_path, "--timeout", "1")
        finally:
            os.kill(stopped, signal.SIGCONT)
        assert silent.returncode == 1
        assert "within 1s" in silent.stderr, silent.stderr


def test_a_replacement_worker_holds_an_early_sighup_and_serves_the_file_as_it_is(
    simulator: ServerProcess, tmp_path: Path
) -> None:
    """A worker killed before a reload is replaced; SIGHUP sent to the replacement while it starts neither
    ends it nor is lost, `maas reload` does not wait for the dead worker, and the key added to the file
    answers on both workers."""
    config = _config(simulator)
    with _serve_workers(config, tmp_path) as gateway:
        assert gateway.process is not None
        supervisor = gateway.process.pid
        first = worker_pids(supervisor)
        key = _add_key(config, tmp_path, "after_crash")
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not set(worker_pids(supervisor)) - set(first):
            assert time.monotonic() < deadline, "The killed worker was not replaced."
            time.sleep(0.01)
        (replacement,) = set(worker_pids(supervisor)) - set(first)
        os.kill(replacement, signal.SIGHUP)  # long before it can reload: held until it can
        result = _reload(tmp_path)
        assert result.returncode == 0, result.stderr
        # The replacement may still be starting; it answers once it has, with the key already in force.
        answers = answers_for_new_key(gateway.url, key, LIMIT, workers=2, within=30)
        assert set(answers.statuses) == {200}, answers
        assert answers.workers == 2, answers
        assert worker_pids(supervisor) == sorted([first[1], replacement])
        assert gateway.log().count("died") == 1, gateway.log()
