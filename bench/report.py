"""Turning measurements into the comparison that matters: the gateway against the backend it fronts.

A gateway figure alone says little (it depends on the machine); its ratio to the same backend measured
directly, on the same machine in the same run, is what the project's targets are written against. The
targets are judged against the simulator; against the fast backend (bench/fast_backend.py) the same
ratio and the time added per request show the gateway's own cost, unjudged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from wrk import WrkResult

__all__ = [
    "DIRECT",
    "DISTURBED",
    "JUDGED_BACKEND",
    "MAX_ADDED_P50_MS",
    "MIN_RPS_RATIO",
    "Comparison",
    "Measurement",
    "compare",
    "print_tables",
    "write_json",
]

DIRECT = "direct"
MIN_RPS_RATIO = 0.40  # through the gateway, at least 40% of the simulator's requests/s at 32 connections
MAX_ADDED_P50_MS = 0.5  # and under 0.5 ms added to the median latency at one connection
DISTURBED = 0.10  # share of a benchmark core used by other processes that makes a run suspect
JUDGED_BACKEND = "sim"  # the targets were set against the simulator; a faster backend lowers every ratio


@dataclass(slots=True)
class Measurement:
    """One wrk run against one target in front of one backend (``target`` is ``direct`` or a gateway
    variant); ``error`` says why a run failed or its answers were not 200."""

    backend: str
    target: str
    scenario: str
    connections: int
    result: WrkResult | None = None
    error: str | None = None
    gateway_cpu_s: float | None = None
    backend_cpu_s: float = 0.0
    foreign_load: dict[str, float] = field(default_factory=dict)  # core -> share used by other processes
    rps_runs: list[float] = field(default_factory=list)  # every repeat, lowest first; the median is kept
    waited_s: float = 0.0  # how long the run waited for other processes to leave the cores idle

    @property
    def disturbed(self) -> bool:
        """Whether other processes took a noticeable share of a benchmark core during the run."""
        return any(share > DISTURBED for share in self.foreign_load.values())

    def describe_foreign(self) -> str:
        return ", ".join(
            f"{cpu} {share:.0%}" for cpu, share in self.foreign_load.items() if share > DISTURBED
        )

    @property
    def gateway_us_per_request(self) -> float | None:
        if self.gateway_cpu_s is None or self.result is None or not self.result.requests:
            return None
        return self.gateway_cpu_s / self.result.requests * 1e6

    @property
    def backend_us_per_request(self) -> float | None:
        """The backend's CPU per request: what it costs the load core, beside wrk."""
        if self.result is None or not self.result.requests:
            return None
        return self.backend_cpu_s / self.result.requests * 1e6

    @property
    def gateway_busy(self) -> float | None:
        """Share of the gateway's core in use during the run (1.0 means the core was saturated)."""
        if self.gateway_cpu_s is None or self.result is None or not self.result.duration_s:
            return None
        return self.gateway_cpu_s / self.result.duration_s

    def as_dict(self) -> dict[str, Any]:
        us = self.gateway_us_per_request
        backend_us = self.backend_us_per_request
        busy = self.gateway_busy
        return {
            "backend": self.backend,
            "target": self.target,
            "scenario": self.scenario,
            "connections": self.connections,
            "wrk": self.result.as_dict() if self.result else None,
            "error": self.error,
            "gateway_cpu_us_per_request": round(us, 1) if us is not None else None,
            "gateway_core_busy": round(busy, 3) if busy is not None else None,
            "backend_cpu_s": round(self.backend_cpu_s, 3),
            "backend_cpu_us_per_request": round(backend_us, 1) if backend_us is not None else None,
            "foreign_load": self.foreign_load,
            "rps_runs": self.rps_runs,
            "waited_for_quiet_s": self.waited_s,
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """A gateway run against the direct run of the same backend, scenario and connection count.

    ``added_us_per_request`` is 1/gateway req/s minus 1/direct req/s. Where the busiest core is saturated
    (the largest connection count) it is the microseconds of one core the gateway adds to each request;
    at one connection it is the mean round trip the gateway adds.
    """

    backend: str
    target: str
    scenario: str
    connections: int
    rps_ratio: float
    added_p50_ms: float
    added_p99_ms: float
    added_us_per_request: float
    meets: dict[str, bool] = field(default_factory=dict)  # judged only against JUDGED_BACKEND

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "target": self.target,
            "scenario": self.scenario,
            "connections": self.connections,
            "rps_ratio": round(self.rps_ratio, 3),
            "added_p50_ms": round(self.added_p50_ms, 3),
            "added_p99_ms": round(self.added_p99_ms, 3),
            "added_us_per_request": round(self.added_us_per_request, 1),
            "meets": self.meets,
        }


def compare(measurements: Sequence[Measurement], load_connections: int) -> list[Comparison]:
    """Compare every gateway run with the direct run in front of the same backend; judge the targets
    where they apply (against the simulator only)."""
    direct = {(m.backend, m.scenario, m.connections): m.result for m in measurements if m.target == DIRECT}
    out = []
    for m in measurements:
        base = direct.get((m.backend, m.scenario, m.connections))
        if m.target == DIRECT or m.result is None or not m.result.rps or base is None or not base.rps:
            continue
        ratio = m.result.rps / base.rps
        added = m.result.p50_ms - base.p50_ms
        added_us = 1e6 / m.result.rps - 1e6 / base.rps
        meets: dict[str, bool] = {}
        if m.backend == JUDGED_BACKEND and m.connections == load_connections:
            meets["rps_ratio"] = ratio >= MIN_RPS_RATIO
        if m.backend == JUDGED_BACKEND and m.connections == 1:
            meets["added_p50"] = added < MAX_ADDED_P50_MS
        added_p99 = m.result.p99_ms - base.p99_ms
        out.append(
            Comparison(
                m.backend, m.target, m.scenario, m.connections, ratio, added, added_p99, added_us, meets
            )
        )
    return out


def _mark(ok: bool | None) -> str:
    return "" if ok is None else (" [green]ok[/]" if ok else " [red]MISS[/]")


def _short(text: str, limit: int = 60) -> str:
    """The first line of an error, cut to fit a table cell (the JSON file keeps all of it)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _fmt(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def print_tables(
    console: Console,
    measurements: Sequence[Measurement],
    comparisons: Sequence[Comparison],
    load_connections: int,
    backends: Mapping[str, str],
) -> None:
    """For each backend (name to description) every run with its figures; then one line per backend,
    gateway variant and scenario against the targets."""
    by_key = {(c.backend, c.target, c.scenario, c.connections): c for c in comparisons}
    for backend, description in backends.items():
        runs = [m for m in measurements if m.backend == backend]
        if runs:
            console.print(_runs_table(runs, by_key, f"direct to {description} and through the gateway"))

    summary = Table(title=f"Against the targets (judged against the {JUDGED_BACKEND} backend only)")
    summary.add_column("backend")
    summary.add_column("gateway variant")
    summary.add_column("scenario")
    summary.add_column(
        f"req/s vs direct at {load_connections} conns (≥ {MIN_RPS_RATIO:.0%})", justify="right"
    )
    summary.add_column(f"added µs/req at {load_connections} conns", justify="right")
    summary.add_column(f"added p50 at 1 conn (< {MAX_ADDED_P50_MS} ms)", justify="right")
    order = {name: index for index, name in enumerate(backends)}
    triples = sorted(
        {(c.backend, c.target, c.scenario) for c in comparisons},
        key=lambda t: (order.get(t[0], len(order)), t[1], t[2]),
    )
    for backend, target, scenario in triples:
        load = by_key.get((backend, target, scenario, load_connections))
        single = by_key.get((backend, target, scenario, 1))
        summary.add_row(
            backend,
            target,
            scenario,
            f"{load.rps_ratio:.0%}{_mark(load.meets.get('rps_ratio'))}" if load else "-",
            f"{load.added_us_per_request:+,.0f}" if load else "-",
            f"{single.added_p50_ms:+.3f} ms{_mark(single.meets.get('added_p50'))}" if single else "-",
        )
    console.print(summary)


def _runs_table(
    measurements: Sequence[Measurement],
    by_key: Mapping[tuple[str, str, str, int], Comparison],
    title: str,
) -> Table:
    """Every run in front of one backend, grouped by scenario and connection count."""
    table = Table(title=f"Requests/s and latency, {title}")
    for name in ("scenario", "conns", "target", "req/s", "p50 ms", "p99 ms"):
        table.add_column(name, justify="left" if name in ("scenario", "target") else "right")
    for name in (
        "vs direct",
        "+p50 ms",
        "+p99 ms",
        "+µs/req",
        "gw µs/req",
        "gw core",
        "errors, notes",
    ):
        table.add_column(name, justify="left" if name.startswith("errors") else "right")
    ordered = sorted(measurements, key=lambda m: (m.scenario, -m.connections))
    previous: tuple[str, int] | None = None
    for m in ordered:
        if previous is not None and previous != (m.scenario, m.connections):
            table.add_section()
        previous = (m.scenario, m.connections)
        c = by_key.get((m.backend, m.target, m.scenario, m.connections))
        r = m.result
        errors = _short(m.error or (r.describe_errors() if r else "no result"))
        note = f"[yellow]other load {m.describe_foreign()}[/]" if m.disturbed else ""
        busy = m.gateway_busy
        table.add_row(
            m.scenario,
            str(m.connections),
            m.target,
            _fmt(r.rps if r else None, ",.0f"),
            _fmt(r.p50_ms if r else None, ".3f"),
            _fmt(r.p99_ms if r else None, ".3f"),
            (_fmt(c.rps_ratio * 100, ".0f") + "%" + _mark(c.meets.get("rps_ratio"))) if c else "",
            (_fmt(c.added_p50_ms, "+.3f") + _mark(c.meets.get("added_p50"))) if c else "",
            _fmt(c.added_p99_ms if c else None, "+.3f"),
            _fmt(c.added_us_per_request if c else None, "+,.0f"),
            _fmt(m.gateway_us_per_request, ".0f"),
            _fmt(busy * 100 if busy is not None else None, ".0f") + ("%" if busy is not None else ""),
            " ".join(filter(None, [f"[red]{errors}[/]" if errors else "", note])),
        )
    return table


def write_json(
    path: Path,
    meta: dict[str, Any],
    measurements: Sequence[Measurement],
    comparisons: Sequence[Comparison],
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        **meta,
        "targets": {"min_rps_ratio": MIN_RPS_RATIO, "max_added_p50_ms": MAX_ADDED_P50_MS},
        "measurements": [m.as_dict() for m in measurements],
        "comparisons": [c.as_dict() for c in comparisons],
    }
    path.write_text(json.dumps(data, indent=2) + "\n", "utf-8")
