"""Measuring one server (a backend or a gateway) in every scenario, and what else used its cores.

Each scenario is checked once by hand (wrk never looks at bodies), warmed up, then measured ``repeat``
times; the run with the median requests/s is kept, so one disturbed run does not decide the figure.
Around every run the CPU time of the gateway, the backend and wrk is compared with what each core did
in all: the remainder is other work on the machine, reported so a disturbed figure can be recognised.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

import environment
from report import DISTURBED, Measurement
from services import BENCH_KEY, Service, http_request
from wrk import WrkError, WrkResult, run_wrk

__all__ = ["HEADERS", "PATH", "SCENARIOS", "Plan", "connection_counts", "measure", "measure_one", "preflight"]

_MESSAGES = [{"role": "user", "content": "Write one sentence about gateways."}]
SCENARIOS: dict[str, dict[str, Any]] = {
    "chat": {"model": "simulator-model", "messages": _MESSAGES},
    "stream": {"model": "simulator-model", "messages": _MESSAGES, "stream": True},
}
PATH = "/v1/chat/completions"
HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {BENCH_KEY}"}


@dataclass(frozen=True, slots=True)
class Plan:
    """How long and how often to measure, with how many connections, and on which cores."""

    duration_s: float
    warmup_s: float
    repeat: int
    connections: tuple[int, ...]
    scenarios: tuple[str, ...]
    gateway_cpu: int | None
    load_cpu: int | None
    wait_quiet_s: float = 0.0  # wait up to this long for other processes to leave the cores idle


@dataclass(frozen=True, slots=True)
class _Counters:
    """CPU seconds so far: the server under test, the backend, our reaped children (wrk), each core."""

    server: float
    backend: float
    children: float
    cores: dict[int, float]

    @classmethod
    def now(cls, server: Service, backend: Service) -> _Counters:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(
            server.cpu_seconds(),
            backend.cpu_seconds(),
            usage.ru_utime + usage.ru_stime,
            environment.busy_seconds(),
        )


def preflight(port: int, scenario: str) -> str | None:
    """Send the scenario's request once and check the answer is a 200 of the right kind.

    wrk counts only statuses of 400 and more as errors and never looks at bodies, so a gateway that
    answered quickly with something else would otherwise look fast.
    """
    try:
        status, headers, answer = http_request(port, PATH, json.dumps(SCENARIOS[scenario]).encode(), HEADERS)
    except OSError as exc:
        return f"preflight request failed: {exc}"
    if status != 200:
        return f"preflight answered {status}: {answer[:200].decode('utf-8', 'replace')}"
    if scenario == "stream":
        if not headers.get("content-type", "").startswith("text/event-stream"):
            return f"preflight stream has content type {headers.get('content-type')!r}"
        if not answer.rstrip().endswith(b"data: [DONE]") or b'"error"' in answer:
            return "preflight stream did not end with data: [DONE], or carried an error"
    elif b'"choices"' not in answer:
        return "preflight answer has no choices"
    return None


def _one_run(
    plan: Plan, url: str, script: Path, m: Measurement, server: Service, backend: Service
) -> tuple[WrkResult, Measurement]:
    """One measured wrk run, as a measurement of its own (CPU use and foreign load filled in)."""
    gateway = server is not backend
    before = _Counters.now(server, backend)
    result = run_wrk(url, script, connections=m.connections, duration_s=plan.duration_s, cpu=plan.load_cpu)
    after = _Counters.now(server, backend)
    run = Measurement(m.backend, m.target, m.scenario, m.connections, result)
    run.gateway_cpu_s = after.server - before.server if gateway else None
    run.backend_cpu_s = after.backend - before.backend
    ours = {  # CPU seconds our own processes used on each pinned core
        plan.gateway_cpu: run.gateway_cpu_s or 0.0,
        plan.load_cpu: run.backend_cpu_s + after.children - before.children,
    }
    for cpu, own in ours.items():
        if cpu is not None and cpu in before.cores and cpu in after.cores and result.duration_s:
            foreign = after.cores[cpu] - before.cores[cpu] - own
            run.foreign_load[f"cpu{cpu}"] = round(max(0.0, foreign) / result.duration_s, 3)
    return result, run


def _wait_until_quiet(plan: Plan) -> float:
    """Wait (up to ``plan.wait_quiet_s``) until other processes leave the benchmark's cores idle.

    Our own servers are idle between runs, so whatever keeps a core busy now is someone else's work.
    Returns the seconds waited.
    """
    cpus = [c for c in (plan.gateway_cpu, plan.load_cpu) if c is not None] or [0, 1]
    start = time.monotonic()
    while time.monotonic() - start < plan.wait_quiet_s:
        load = environment.background_load(cpus, seconds=1.0)
        if all(share < DISTURBED for share in load.values()):
            break
    return round(time.monotonic() - start, 1)


def measure_one(plan: Plan, script: Path, m: Measurement, server: Service, backend: Service) -> None:
    """Check, warm up, then measure one scenario at one connection count; fill in ``m``."""
    m.error = preflight(server.port, m.scenario)
    if m.error is not None:
        return
    url = server.url + PATH
    if plan.wait_quiet_s > 0:
        m.waited_s = _wait_until_quiet(plan)
    try:
        run_wrk(url, script, connections=m.connections, duration_s=plan.warmup_s, cpu=plan.load_cpu)
        runs = sorted(
            (_one_run(plan, url, script, m, server, backend) for _ in range(plan.repeat)),
            key=lambda pair: pair[0].rps,
        )
    except WrkError as exc:
        m.error = str(exc)
        return
    chosen = runs[len(runs) // 2][1]
    m.result, m.gateway_cpu_s, m.backend_cpu_s = chosen.result, chosen.gateway_cpu_s, chosen.backend_cpu_s
    m.foreign_load = chosen.foreign_load
    m.rps_runs = [round(result.rps, 1) for result, _ in runs]
    problems = [
        r.describe_errors() or "no request completed" for r, _ in runs if r.error_count or not r.requests
    ]
    m.error = "; ".join(problems) or None


def measure(
    plan: Plan,
    scripts: dict[str, Path],
    backend_name: str,
    target: str,
    server: Service,
    backend: Service,
    console: Console,
) -> list[Measurement]:
    """Every scenario at every connection count against ``server`` (``backend`` itself or a gateway in
    front of it)."""
    out = []
    for scenario in plan.scenarios:
        for connections in plan.connections:
            m = Measurement(backend_name, target, scenario, connections)
            measure_one(plan, scripts[scenario], m, server, backend)
            for service in {server, backend}:
                service.check_alive()  # a crashed server is fatal, not a slow scenario
            label = f"{backend_name} {target}"
            console.print(f"  {label:<19} {scenario:<6} c={connections:<3} {_line(m)}", highlight=False)
            out.append(m)
    return out


def _line(m: Measurement) -> str:
    r = m.result
    text = f"{r.rps:9,.0f} req/s  p50 {r.p50_ms:7.3f} ms  p99 {r.p99_ms:7.3f} ms" if r else ""
    if m.backend_us_per_request is not None:
        text += f"  backend {m.backend_us_per_request:5,.0f} µs/req"
    if m.waited_s >= 1.5:
        text += f"  (waited {m.waited_s:g} s for idle cores)"
    if m.disturbed:
        text += f"  [yellow]other load: {m.describe_foreign()}[/]"
    return text + (f"  [red]{m.error}[/]" if m.error else "")


def connection_counts(text: str) -> Sequence[int]:
    """``'32,1'`` as ``[32, 1]``: distinct, largest first (the largest is the load for the targets)."""
    return sorted({int(part) for part in text.split(",") if part.strip()}, reverse=True)
