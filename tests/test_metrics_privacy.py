"""Metrics name users, so they stay private: their own listener, the API port only for the admin, and one
scrape that describes every worker of `maas serve --workers N`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from maas_gateway.cli.banner import print_banner
from maas_gateway.config import ConfigError, demo_config, demo_config_text, parse_config
from maas_gateway.metrics.multiprocess import forget_dead_processes
from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory, gateway_config_file
from tests.support.limits import chat, concurrent_statuses
from tests.support.processes import GatewayProcess, ServerProcess, free_port, maas

ADMIN_KEY = "metrics-test-admin-key-0123456789abcdef"


def _config(simulator: ServerProcess, **metrics: Any) -> dict[str, Any]:
    config = demo_dict(simulator.url, limits=False)
    config["metrics"] = metrics
    return config


def _demo() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(demo_config_text())
    return data


def _scrape(gateway: GatewayProcess) -> httpx.Response:
    """GET the metrics listener, waiting briefly for it: it may start a moment after the API port."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return httpx.get(gateway.metrics_url + "/metrics", timeout=5)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _total(text: str, family: str) -> float:
    for metric in text_string_to_metric_families(text):
        if metric.name == family:
            return sum(sample.value for sample in metric.samples if sample.name == family + "_total")
    return 0.0


def _error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


@pytest.mark.parametrize(
    ("listen", "address"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("0.0.0.0:19464", ("0.0.0.0", 19464)),
        ("[::1]:9464", ("::1", 9464)),
        ("[::]:9464", ("::", 9464)),
        ("metrics.internal:9100", ("metrics.internal", 9100)),
    ],
)
def test_metrics_listen_accepts_host_and_port(listen: str, address: tuple[str, int]) -> None:
    """`metrics.listen` takes host:port, with IPv6 addresses in brackets; the default is loopback 9464."""
    data = _demo()
    data["metrics"] = {"listen": listen}
    assert parse_config(data).metrics.address == address
    assert parse_config(_demo()).metrics.address == ("127.0.0.1", 9464)
    assert parse_config(_demo()).metrics.on_api_port is False


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        ("9464", "'9464' is not a listening address; write host:port, such as 127.0.0.1:9464"),
        (":9464", "':9464' is not a listening address"),
        ("::1:9464", "Put the IPv6 address of '::1:9464' in brackets, as in [::1]:9464."),
        ("[::1:9464", "'[::1:9464' opens an IPv6 address with '[' but does not close it with ']'."),
        ("[nope]:9464", "'nope' in '[nope]:9464' is not an IPv6 address."),
        ("127.0.0.1:0", "The port of '127.0.0.1:0' must be a number from 1 to 65535."),
        ("127.0.0.1:http", "The port of '127.0.0.1:http' must be a number from 1 to 65535."),
        ("127.0.0.1:70000", "The port of '127.0.0.1:70000' must be a number from 1 to 65535."),
    ],
)
def test_metrics_listen_rejects_bad_addresses_with_a_sentence(listen: str, message: str) -> None:
    """A bad `metrics.listen` is refused at load time with a sentence naming the field and the fix."""
    data = _demo()
    data["metrics"] = {"listen": listen}
    with pytest.raises(ConfigError) as raised:
        parse_config(data)
    assert "metrics.listen: " + message in str(raised.value)


def test_metrics_leave_the_api_port_for_their_own_listener(
    simulator: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """By default /metrics on the API port is 404 unknown_url, like any unknown URL, while /health and
    /ready stay; the metrics listener serves the counts, and answers 404 (OpenAI shape) elsewhere and
    405 to anything but GET."""
    gateway = gateway_factory(_config(simulator))
    assert chat(gateway.url, "premiumuser1_key", max_tokens=1).status_code == 200
    hidden = httpx.get(gateway.url + "/metrics", timeout=5)
    assert hidden.status_code == 404
    assert _error_code(hidden) == "unknown_url"
    assert "premiumuser1" not in hidden.text
    assert httpx.get(gateway.url + "/health", timeout=5).status_code == 200
    assert httpx.get(gateway.url + "/ready", timeout=5).status_code == 200

    scraped = _scrape(gateway)
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert _total(scraped.text, "authorized_calls") == 1
    assert 'user="premiumuser1"' in scraped.text
    elsewhere = httpx.get(gateway.metrics_url + "/v1/models", timeout=5)
    assert elsewhere.status_code == 404
    assert _error_code(elsewhere) == "unknown_url"
    assert "only /metrics" in elsewhere.json()["error"]["message"]
    posted = httpx.post(gateway.metrics_url + "/metrics", timeout=5)
    assert posted.status_code == 405
    assert posted.headers["allow"] == "GET"


def test_metrics_on_the_api_port_need_the_admin_key(
    simulator: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """With `metrics.on_api_port: true`, /metrics on the API port is 401 (OpenAI shape) without the admin
    key or with a user's key, and 200 with the admin key; the metrics listener still serves them."""
    env = {"MAAS_ADMIN_KEY": ADMIN_KEY}
    gateway = gateway_factory(_config(simulator, on_api_port=True), env=env)
    assert chat(gateway.url, "freeuser1_key", max_tokens=1).status_code == 200
    for headers in ({}, {"Authorization": "Bearer premiumuser1_key"}, {"Authorization": "Basic abc"}):
        refused = httpx.get(gateway.url + "/metrics", headers=headers, timeout=5)
        assert refused.status_code == 401, headers
        assert refused.json()["error"]["type"] == "authentication_error"
        assert "freeuser1" not in refused.text
    admitted = httpx.get(
        gateway.url + "/metrics", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=5
    )
    assert admitted.status_code == 200
    assert _total(admitted.text, "authorized_calls") == 1
    assert _scrape(gateway).status_code == 200


def test_metrics_on_the_api_port_are_closed_without_an_admin_key(
    simulator: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """With `on_api_port: true` but no admin key configured, /metrics on the API port is 403
    admin_disabled for everyone: it is never open by default."""
    gateway = gateway_factory(_config(simulator, on_api_port=True), env={"MAAS_ADMIN_KEY": ""})
    refused = httpx.get(gateway.url + "/metrics", headers={"Authorization": "Bearer anything"}, timeout=5)
    assert refused.status_code == 403
    assert _error_code(refused) == "admin_disabled"


def test_one_scrape_counts_every_worker(simulator: ServerProcess, gateway_factory: GatewayFactory) -> None:
    """With `--workers 2`, N requests through the API port make authorized_calls_total sum to exactly N in
    each single scrape of the metrics listener, scrape after scrape; the ledger's counter, which workers
    publish about once a second, reaches N too."""
    requests = 40
    gateway = gateway_factory(_config(simulator), "--workers", "2")
    statuses = concurrent_statuses(gateway.url, ["premiumuser1_key", "freeuser1_key"] * (requests // 2))
    assert statuses == [200] * requests
    deadline = time.monotonic() + 10
    while _total(_scrape(gateway).text, "authorized_calls") < requests:
        assert time.monotonic() < deadline, _scrape(gateway).text
        time.sleep(0.05)
    for _ in range(8):
        assert _total(_scrape(gateway).text, "authorized_calls") == requests
    while _total(_scrape(gateway).text, "maas_ledger_records_written") < requests:
        assert time.monotonic() < deadline + 5, _scrape(gateway).text
        time.sleep(0.1)
    assert _total(_scrape(gateway).text, "maas_ledger_records_written") == requests


def test_a_taken_metrics_port_stops_the_start_with_a_sentence(
    simulator: ServerProcess, tmp_path: Path
) -> None:
    """If the metrics address is taken, `maas serve` exits 2 naming the address, with no traceback."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        config = _config(simulator)
        path, _port, metrics_port = gateway_config_file(config, tmp_path)
        text = path.read_text("utf-8").replace(f"127.0.0.1:{metrics_port}", f"127.0.0.1:{taken}")
        path.write_text(text, "utf-8")
        for workers in ("1", "2"):
            result = subprocess.run(
                maas("serve", "--config", str(path), "--workers", workers),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 2, result.stderr
            assert f"The metrics listener cannot listen on 127.0.0.1:{taken}: " in result.stderr
            assert "Traceback" not in result.stderr


def _workers(gateway: GatewayProcess) -> list[int]:
    """The worker processes of `maas serve --workers N` (the supervisor's spawned children)."""
    assert gateway.process is not None
    pid = gateway.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text("utf-8").split()
    workers = []
    for child in children:
        command = Path(f"/proc/{child}/cmdline").read_bytes()
        if b"spawn_main" in command and b"resource_tracker" not in command:
            workers.append(int(child))
    return workers


def test_a_killed_workers_counts_still_count(
    simulator: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """With `--workers 2`, a worker killed by SIGKILL (and replaced by the supervisor) leaves its counts
    in the pod's totals, so counters never go back (its live gauges: the test below)."""
    gateway = gateway_factory(_config(simulator), "--workers", "2")
    first = concurrent_statuses(gateway.url, ["premiumuser1_key"] * 20)
    assert first == [200] * 20
    deadline = time.monotonic() + 10
    while _total(_scrape(gateway).text, "authorized_calls") < 20:
        assert time.monotonic() < deadline, _scrape(gateway).text
        time.sleep(0.05)
    workers = _workers(gateway)
    assert len(workers) == 2, workers
    os.kill(workers[0], signal.SIGKILL)
    while workers[0] in _workers(gateway) or len(_workers(gateway)) < 2:
        assert time.monotonic() < deadline + 10, gateway.log()
        time.sleep(0.1)
    assert _total(_scrape(gateway).text, "authorized_calls") == 20
    second = concurrent_statuses(gateway.url, ["premiumuser1_key"] * 10)
    assert second == [200] * 10
    while _total(_scrape(gateway).text, "authorized_calls") < 30:
        assert time.monotonic() < deadline + 20, _scrape(gateway).text
        time.sleep(0.05)
    assert _total(_scrape(gateway).text, "authorized_calls") == 30


def _ipv6_loopback_port() -> int:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
            return int(sock.getsockname()[1])
    except OSError:
        pytest.skip("This machine has no IPv6 loopback address.")


def test_metrics_listen_on_ipv6_loopback(simulator: ServerProcess, tmp_path: Path) -> None:
    """`metrics.listen: "[::1]:PORT"` serves /metrics on the IPv6 loopback address."""
    port, api_port = _ipv6_loopback_port(), free_port()
    config = _config(simulator, listen=f"[::1]:{port}")
    config["server"]["port"] = api_port
    path = tmp_path / "ipv6.yaml"
    path.write_text(yaml.safe_dump(config), "utf-8")
    with ServerProcess(maas("serve", "--config", str(path)), api_port, tmp_path / "ipv6.log"):
        deadline = time.monotonic() + 5
        while True:
            try:
                scraped = httpx.get(f"http://[::1]:{port}/metrics", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the metrics listener on [::1] never answered"
                time.sleep(0.05)
    assert scraped.status_code == 200
    assert "authorized_calls" in scraped.text


def test_banner_shows_the_metrics_listener(capsys: pytest.CaptureFixture[str]) -> None:
    """The `maas up` banner points at the metrics listener, reached on loopback for a wildcard bind, and
    no longer at /metrics on the API port."""
    config = demo_config()
    config = config.model_copy(
        update={"metrics": config.metrics.model_copy(update={"listen": "0.0.0.0:19464"})}
    )
    print_banner(config, 8001)
    out = capsys.readouterr().out
    assert "http://127.0.0.1:19464/metrics" in out
    assert ":8000/metrics" not in out


def test_a_dead_or_unreaped_workers_live_gauges_stop_counting(tmp_path: Path) -> None:
    """At a scrape, the live-gauge files of a worker that is gone are removed, also while the worker is
    a zombie its supervisor has not reaped yet; a live worker's stay. Its counters are never removed."""
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # not waited for: a zombie once it exits
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{zombie.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child process never became a zombie"
            time.sleep(0.01)
        files = [
            tmp_path / f"gauge_livesum_{zombie.pid}.db",
            tmp_path / f"gauge_livesum_{os.getpid()}.db",
            tmp_path / f"counter_{zombie.pid}.db",
        ]
        for path in files:
            path.write_bytes(b"")
        forget_dead_processes(tmp_path)
        assert [path.exists() for path in files] == [False, True, True]
    finally:
        zombie.wait()
