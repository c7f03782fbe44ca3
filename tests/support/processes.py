"""Starting our own servers as real processes on free loopback ports, and stopping them cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

__all__ = ["GatewayProcess", "ServerProcess", "free_port", "maas"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A child process serving HTTP; its output goes to a log file so it can never block on a pipe."""

    def __init__(
        self,
        args: Sequence[str],
        port: int,
        log_path: Path,
        *,
        health_path: str = "/health",
        env: dict[str, str] | None = None,
    ) -> None:
        self.args = list(args)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.health_path = health_path
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> Self:
        log = self.log_path.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(self.env or {})}
        self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.args} exited early:\n{self.log()}")
            try:
                if httpx.get(self.url + self.health_path, timeout=0.5).status_code < 500:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.args} did not become healthy in {timeout}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else None
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(5)

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class GatewayProcess(ServerProcess):
    """A gateway, which serves its metrics on a listener of its own (``metrics.listen``)."""

    def __init__(
        self,
        args: Sequence[str],
        port: int,
        metrics_port: int,
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(args, port, log_path, env=env)
        self.metrics_url = f"http://127.0.0.1:{metrics_port}"


def maas(*args: str) -> list[str]:
    """The command line of our own console script, run by the interpreter running the tests."""
    return [sys.executable, "-m", "maas_gateway", *args]
