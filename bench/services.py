"""The processes under test: the backends and gateways, pinned to a CPU, and always stopped again.

Each child runs in its own session so a Ctrl+C in the terminal reaches only the benchmark, which then
stops the children in order (SIGTERM to the group, SIGKILL if it lingers). On Linux each child also
asks the kernel to send it SIGTERM if the benchmark itself dies without cleaning up.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from maas_gateway.config import demo_config_text

__all__ = [
    "BACKENDS",
    "BENCH_KEY",
    "Backend",
    "Service",
    "free_port",
    "gateway_config",
    "http_request",
    "maas_command",
]

BENCH_KEY = "benchuser_key"
_HUGE = 10**12  # no benchmark can reach it, so the limiter counts everything and rejects nothing
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A loopback port that is free now (the kernel picks it; the child binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def maas_command(*args: str) -> list[str]:
    """Our console script, run by this interpreter so the benchmark measures the installed package."""
    return [sys.executable, "-m", "maas_gateway", *args]


@dataclass(frozen=True, slots=True)
class Backend:
    """A model server that the gateway fronts in the benchmark, and that is also measured directly."""

    name: str
    description: str  # as in "direct to <description> and through the gateway"
    program: tuple[str, ...]  # the command line without ``--port N``

    def command(self, port: int) -> list[str]:
        return [*self.program, "--port", str(port)]


BACKENDS = {
    b.name: b
    for b in (
        Backend("sim", "the simulator (maas sim)", tuple(maas_command("sim"))),
        Backend(
            "fast",
            "the fast backend (uvloop + httptools)",
            (sys.executable, str(Path(__file__).resolve().with_name("fast_backend.py"))),
        ),
    )
}


def gateway_config(backend: str, port: int, *, limits: bool, access_log: bool) -> dict[str, Any]:
    """The demo configuration pointed at ``backend``, plus a tier whose limits are never reached.

    The ``bench`` tier has the enterprise tier's shape (a request window and three token windows), so a
    limits-on gateway does all the counting work a real tier costs, but with limits of 10^12.
    """
    data: dict[str, Any] = copy.deepcopy(yaml.safe_load(demo_config_text()))
    for model in data["models"]:
        model["backends"] = [backend]
    data["server"].update({"host": "127.0.0.1", "port": port, "access_log": access_log})
    data["limits"]["enabled"] = limits
    data["metrics"] = {"listen": f"127.0.0.1:{free_port()}"}  # never the default: another run may hold it
    data["tiers"]["bench"] = {
        "description": "Benchmark tier: enterprise-shaped limits that are never reached.",
        "limits": [
            {"limit": _HUGE, "unit": "requests", "window": "1m"},
            {"limit": _HUGE, "unit": "tokens", "window": "1m"},
            {"limit": _HUGE, "unit": "tokens", "window": "1h"},
            {"limit": _HUGE, "unit": "tokens", "window": "1d"},
        ],
    }
    data["api_keys"].append({"user": "benchuser", "tier": "bench", "key": BENCH_KEY})
    return data


def http_request(
    port: int,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, dict[str, str], bytes]:
    """One request to a loopback port, read to the end; error statuses are returned, not raised."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST" if body is not None else "GET", path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def _die_with_parent() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def prctl() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return prctl


class Service:
    """A child HTTP server: started pinned to ``cpu``, ready once ``ready_path`` answers 200."""

    def __init__(
        self, name: str, args: Sequence[str], port: int, log_path: Path, *, cpu: int | None, ready_path: str
    ) -> None:
        self.name, self.port, self.log_path, self.ready_path = name, port, log_path, ready_path
        self.url = f"http://127.0.0.1:{port}"
        self.args = ["taskset", "-c", str(cpu), *args] if cpu is not None else list(args)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Service:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                cwd=self.log_path.parent,  # files a server writes relative to its directory stay in ours
                preexec_fn=_die_with_parent(),  # safe: the benchmark starts no threads
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if http_request(self.port, self.ready_path, timeout=1.0)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} was not ready after {timeout:.0f}s.\n{self.log_tail()}")

    def check_alive(self) -> None:
        """Raise with the end of the log if the process has exited."""
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with status {self.process.returncode}.\n{self.log_tail()}"
            )

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process has used so far (Linux ``/proc``; 0 elsewhere)."""
        if self.process is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after ``timeout`` seconds."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        self._signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(process, signal.SIGKILL)
            process.wait(5)

    @staticmethod
    def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)  # the group is the child's own session (start_new_session)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text("utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
