"""The `maas` command line: its help, `maas up` with its banner, and failures of `serve` and `sim`."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from maas_gateway import __version__
from maas_gateway.admin.guard import MIN_ADMIN_KEY_LENGTH
from maas_gateway.cli.banner import print_banner
from maas_gateway.cli.main import serve, up
from maas_gateway.cli.sim_command import sim
from maas_gateway.config import demo_config, demo_config_text
from tests.support.processes import ServerProcess, free_port, maas

WIDE = {"COLUMNS": "200"}


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        maas(*args),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, **(env or {})},
    )


def _flat(text: str) -> str:
    """Text with rich's box characters removed and whitespace collapsed, so wrapping does not matter."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def _panel(log: str, title: str) -> list[str]:
    """The lines printed under the rule titled ``title``, up to the next rule."""
    lines = log.splitlines()
    start = next(i for i, line in enumerate(lines) if title in line and line.lstrip().startswith("─"))
    body: list[str] = []
    for line in lines[start + 1 :]:
        if line.lstrip().startswith("─"):
            return body
        body.append(line.rstrip())
    raise AssertionError(f"the section {title!r} is not closed by a rule")


def _curl_request(lines: list[str]) -> httpx.Request:
    """The request a pasted curl command sends; every line but the last must continue with a backslash."""
    assert all(line.endswith(" \\") for line in lines[:-1]), lines
    words = shlex.split(" ".join(line.removesuffix("\\") for line in lines))
    assert words[:2] == ["curl", "-s"]
    url, data = "", ""
    headers: dict[str, str] = {}
    args = iter(words[2:])
    for word in args:
        if word == "-H":
            name, _, value = next(args).partition(": ")
            headers[name] = value
        elif word == "-d":
            data = next(args)
        else:
            url = word
    return httpx.Request("POST", url, headers=headers, content=data)


def test_help_lists_the_commands_with_their_help() -> None:
    """`maas --help` lists serve, up, sim, config and keys, each with its own help text."""
    result = _run("--help", env=WIDE)
    assert result.returncode == 0
    text = _flat(result.stdout)
    assert "OpenAI-compatible gateway with API keys, tiers and token limits" in text
    for name, help_text in [
        ("serve", serve.__doc__),
        ("up", up.__doc__),
        ("sim", sim.__doc__),
        ("config", "Print or check configuration files."),
        ("keys", "Work with API keys: hash one for a config file, or manage them through the admin API."),
    ]:
        assert help_text is not None
        assert f"{name} {help_text.strip().splitlines()[0]}" in text


def test_subcommand_groups_list_their_commands() -> None:
    """`maas config --help` lists example and validate; `maas keys --help` lists hash."""
    config_help = _flat(_run("config", "--help", env=WIDE).stdout)
    assert "example Print a documented example configuration" in config_help
    assert "validate Check a configuration file" in config_help
    assert "hash Print the SHA-256 digest" in _flat(_run("keys", "--help", env=WIDE).stdout)


def test_version_prints_the_package_version() -> None:
    """`maas version` prints the package version."""
    result = _run("version")
    assert result.returncode == 0
    assert result.stdout.strip() == __version__


@pytest.fixture(scope="module")
def up_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, int]]:
    """`maas up` on free ports and a wide terminal (banner unwrapped); yields it and the sim port."""
    port, sim_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("up") / "up.log"
    command = maas("up", "--port", str(port), "--sim-port", str(sim_port), "--metrics-port", str(free_port()))
    with ServerProcess(command, port, log, env=WIDE) as server:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{sim_port}/health", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield server, sim_port


def test_up_serves_chat_with_a_demo_key(up_server: tuple[ServerProcess, int]) -> None:
    """`maas up` serves a chat completion from its built-in simulator to the demo key freeuser1_key."""
    server, _ = up_server
    body = {"model": "simulator-model", "messages": [{"role": "user", "content": "Hello"}]}
    headers = {"Authorization": "APIKEY freeuser1_key"}
    response = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["total_tokens"] == 30
    denied = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=10)
    assert denied.status_code == 401


def test_up_banner_lists_addresses_and_demo_keys(up_server: tuple[ServerProcess, int]) -> None:
    """The `maas up` banner shows the gateway and simulator addresses and each demo key with user and tier."""
    server, sim_port = up_server
    log = server.log()
    assert f"{server.url}/v1" in log
    assert f"http://127.0.0.1:{sim_port}" in log
    for key in demo_config().api_keys:
        assert key.key is not None
        assert re.search(rf"{key.user}\W+{key.tier}\W+{key.key.get_secret_value()}", log), key.user


def test_up_prints_a_working_admin_key_of_at_least_32_characters(
    up_server: tuple[ServerProcess, int],
) -> None:
    """`maas up` generates a one-off admin key long enough for the gateway's minimum, and it works."""
    server, _ = up_server
    match = re.search(r"admin API key \(this run only\): (\S+)", server.log())
    assert match is not None
    key = match.group(1)
    assert len(key) >= MIN_ADMIN_KEY_LENGTH
    response = httpx.get(f"{server.url}/admin/users", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert response.status_code == 200


def test_up_curl_example_is_ready_to_paste(up_server: tuple[ServerProcess, int]) -> None:
    """The banner's curl example, pasted as printed, gets a chat completion from the gateway."""
    server, _ = up_server
    request = _curl_request(_panel(server.log(), "try it with curl"))
    assert str(request.url) == f"{server.url}/v1/chat/completions"
    assert request.headers["authorization"] == "APIKEY freeuser1_key"
    with httpx.Client(timeout=10) as client:
        response = client.send(request)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"]


def test_up_sdk_example_is_ready_to_paste(up_server: tuple[ServerProcess, int]) -> None:
    """The banner's OpenAI SDK example, run as printed, prints the answer and its usage."""
    server, _ = up_server
    code = "\n".join(_panel(server.log(), "OpenAI SDK"))
    assert f'base_url="{server.url}/v1"' in code
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "simulated response" in result.stdout
    assert "total_tokens=30" in result.stdout


def test_banner_curl_example_survives_an_80_column_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """At the default 80 columns (as when output goes to a log) the curl example is one valid command."""
    monkeypatch.setenv("COLUMNS", "80")
    print_banner(demo_config(), 8001)
    _curl_request(_panel(capsys.readouterr().out, "try it with curl"))


def test_serve_with_a_bad_config_exits_2_naming_the_field(tmp_path: Path) -> None:
    """`maas serve --config bad.yaml` exits 2 with a message naming the bad field, not a traceback."""
    data = yaml.safe_load(demo_config_text())
    data["tiers"]["free"]["limits"][1]["window"] = "soon"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), "utf-8")
    result = _run("serve", "--config", str(path), "--port", str(free_port()))
    assert result.returncode == 2
    assert "tiers.free.limits.1.window" in result.stderr
    assert "'soon' is not a duration" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--mode", "poetry"], "--mode must be fixed, echo or random, not 'poetry'."),
        (["--failure-rate", "1.5"], "--failure-rate must be between 0 and 1."),
        (
            ["--failure-type", "rate_limit,flood"],
            "--failure-type must be rate_limit, context_length, server_error, hang or cut, not 'flood'.",
        ),
        (["--itl-std", "-0.1"], "--ttft, --ttft-std, --itl and --itl-std must not be negative."),
    ],
)
def test_sim_rejects_bad_options(options: list[str], message: str) -> None:
    """`maas sim` with an unknown mode or failure type, a failure rate outside 0..1 or a negative
    latency exits 2 saying why."""
    result = _run("sim", "--port", str(free_port()), *options)
    assert result.returncode == 2
    assert message in result.stderr


def test_up_on_a_busy_port_stops_with_one_line(tmp_path: Path) -> None:
    """`maas up` on a port that is taken prints one line naming the port and what to do, before any
    banner, key or traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = subprocess.run(
            _up_command(port, tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode != 0
    output = (result.stdout + result.stderr).strip()
    assert output == (
        f"The gateway cannot listen on 127.0.0.1:{port}: Address already in use. "
        "Stop what uses the port, or choose another (--port, --sim-port)."
    )


def test_each_uvicorn_start_up_line_is_logged_once(tmp_path: Path) -> None:
    """`maas up` runs three servers in one process; uvicorn's start-up and shutdown lines appear once."""
    port = free_port()
    with ServerProcess(_up_command(port, tmp_path), port, tmp_path / "up.log"):
        pass
    log = (tmp_path / "up.log").read_text()
    for line in ("Started server process", "Application startup complete.", "Application shutdown complete."):
        assert log.count(line) == 1, log


def _up_command(port: int, data_dir: Path) -> list[str]:
    """`maas up` on ``port``, with free simulator and metrics ports and its data under ``data_dir``."""
    ports = ["--sim-port", str(free_port()), "--metrics-port", str(free_port())]
    return maas("up", "--port", str(port), *ports, "--data-dir", str(data_dir))
