"""Driving wrk: the Lua script that sends one POST body, and the JSON its ``done()`` hook prints.

wrk's human-readable output changes units with magnitude (``us``, ``ms``, ``s``) and hides the error
counts in optional lines, so the script prints one JSON line from ``done()`` instead: it gives exact
microsecond percentiles and every error counter, and needs no parsing heuristics.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["WrkError", "WrkResult", "run_wrk", "write_script", "wrk_version"]

_MARKER = "WRK_JSON "

# ``done()`` runs once, after every thread has stopped; its latency object is in microseconds.
_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,'
    .. '"p999_us":%d,"mean_us":%.1f,"max_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,'
    .. '"status":%d,"timeout":%d}}\\n',
    "__MARKER__", summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


class WrkError(RuntimeError):
    """wrk could not run, or printed no result (it crashed or the target refused every connection)."""


@dataclass(frozen=True, slots=True)
class WrkResult:
    """One wrk run. ``errors['status']`` counts answers with a status of 400 or more (wrk's own rule)."""

    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    mean_ms: float
    max_ms: float
    errors: dict[str, int]

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def describe_errors(self) -> str:
        """A short text such as ``'12 non-2xx, 3 timeout'``; empty when the run was clean."""
        names = {"status": "non-2xx"}
        return ", ".join(f"{n} {names.get(k, k)}" for k, n in self.errors.items() if n)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rps": round(self.rps, 1)}


def _lua_long_string(text: str) -> str:
    """``text`` as a Lua long-bracket literal, with a bracket level that cannot occur inside it."""
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


def write_script(path: Path, body: bytes, headers: Mapping[str, str]) -> Path:
    """Write a wrk script that POSTs ``body`` with ``headers`` and reports through ``done()``."""
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_long_string(body.decode('utf-8'))}"]
    lines += [f"wrk.headers[ {_lua_long_string(k)} ] = {_lua_long_string(v)}" for k, v in headers.items()]
    path.write_text("\n".join(lines) + "\n" + _DONE.replace("__MARKER__", _MARKER), "utf-8")
    return path


def run_wrk(
    url: str,
    script: Path,
    *,
    connections: int,
    duration_s: float,
    cpu: int | None,
    timeout_s: float = 5.0,
) -> WrkResult:
    """Run wrk (one thread, pinned to ``cpu``) against ``url`` and return its measurements."""
    command = [
        "wrk",
        "--latency",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={max(1, round(timeout_s))}s",
        "-s",
        str(script),
        url,
    ]
    if cpu is not None:
        command = ["taskset", "-c", str(cpu), *command]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + 30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WrkError(f"wrk did not run: {exc}") from exc
    for line in done.stdout.splitlines():
        if line.startswith(_MARKER):
            return _parse(json.loads(line.removeprefix(_MARKER)))
    output = (done.stderr.strip() or done.stdout.strip())[-1000:]
    raise WrkError(f"wrk exited with status {done.returncode} and no result: {output}")


def _parse(data: dict[str, Any]) -> WrkResult:
    def ms(key: str) -> float:
        return round(float(data[key]) / 1000.0, 3)

    return WrkResult(
        requests=int(data["requests"]),
        duration_s=int(data["duration_us"]) / 1e6,
        p50_ms=ms("p50_us"),
        p90_ms=ms("p90_us"),
        p99_ms=ms("p99_us"),
        p999_ms=ms("p999_us"),
        mean_ms=ms("mean_us"),
        max_ms=ms("max_us"),
        errors={str(k): int(v) for k, v in data["errors"].items()},
    )


def wrk_version() -> str:
    """wrk's version line (``wrk -v`` prints it and exits with status 1)."""
    try:
        done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    first = (done.stdout or done.stderr).strip().splitlines()
    return first[0] if first else "unknown"
