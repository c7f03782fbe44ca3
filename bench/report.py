"""Turning measurements into the comparison that matters: the gateway against the simulator it fronts.

A gateway figure alone says little (it depends on the machine); its ratio to the simulator measured
directly, on the same machine in the same run, is what the project's targets are written against.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from wrk import WrkResult

__all__ = [
    "DIRECT",
    "DISTURBED",
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


@dataclass(slots=True)
class Measurement:
    """One wrk run against one target; ``error`` says why a run failed or its answers were not 200."""

    target: str
    scenario: str
    connections: int
    result: WrkResult | None = None
    error: str | None = None
    gateway_cpu_s: float | None = None
    simulator_cpu_s: float = 0.0
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
    def gateway_busy(self) -> float | None:
        """Share of the gateway's core in use during the run (1.0 means the core was saturated)."""
        if self.gateway_cpu_s is None or self.result is None or not self.result.duration_s:
            return None
        return self.gateway_cpu_s / self.result.duration_s

    def as_dict(self) -> dict[str, Any]:
        us = self.gateway_us_per_request
        busy = self.gateway_busy
        return {
            "target": self.target,
            "scenario": self.scenario,
            "connections": self.connections,
            "wrk": self.result.as_dict() if self.result else None,
            "error": self.error,
            "gateway_cpu_us_per_request": round(us, 1) if us is not None else None,
            "gateway_core_busy": round(busy, 3) if busy is not None else None,
            "simulator_cpu_s": round(self.simulator_cpu_s, 3),
            "foreign_load": self.foreign_load,
            "rps_runs": self.rps_runs,
            "waited_for_quiet_s": self.waited_s,
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """A gateway run against the direct run of the same scenario and connection count."""

    target: str
    scenario: str
    connections: int
    rps_ratio: float
    added_p50_ms: float
    added_p99_ms: float
    meets: dict[str, bool] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "scenario": self.scenario,
            "connections": self.connections,
            "rps_ratio": round(self.rps_ratio, 3),
            "added_p50_ms": round(self.added_p50_ms, 3),
            "added_p99_ms": round(self.added_p99_ms, 3),
            "meets": self.meets,
        }


def compare(measurements: Sequence[Measurement], load_connections: int) -> list[Comparison]:
    """Compare every clean gateway run with its direct run; judge the targets where they apply."""
    direct = {(m.scenario, m.connections): m.result for m in measurements if m.target == DIRECT}
    out = []
    for m in measurements:
        base = direct.get((m.scenario, m.connections))
        if m.target == DIRECT or m.result is None or base is None or not base.rps:
            continue
        ratio = m.result.rps / base.rps
        added = m.result.p50_ms - base.p50_ms
        meets: dict[str, bool] = {}
        if m.connections == load_connections:
            meets["rps_ratio"] = ratio >= MIN_RPS_RATIO
        if m.connections == 1:
            meets["added_p50"] = added < MAX_ADDED_P50_MS
        out.append(
            Comparison(
                m.target, m.scenario, m.connections, ratio, added, m.result.p99_ms - base.p99_ms, meets
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
) -> None:
    """Every run with its figures, then one line per gateway variant and scenario against the targets."""
    by_key = {(c.target, c.scenario, c.connections): c for c in comparisons}
    table = Table(title="Requests/s and latency, direct to the simulator and through the gateway")
    for name in ("scenario", "conns", "target", "req/s", "p50 ms", "p99 ms"):
        table.add_column(name, justify="left" if name in ("scenario", "target") else "right")
    for name in ("vs direct", "+p50 ms", "+p99 ms", "gw µs/req", "gw core", "errors, notes"):
        table.add_column(name, justify="left" if name.startswith("errors") else "right")
    ordered = sorted(measurements, key=lambda m: (m.scenario, -m.connections))
    previous: tuple[str, int] | None = None
    for m in ordered:
        if previous is not None and previous != (m.scenario, m.connections):
            table.add_section()
        previous = (m.scenario, m.connections)
        c = by_key.get((m.target, m.scenario, m.connections))
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
            _fmt(m.gateway_us_per_request, ".0f"),
            _fmt(busy * 100 if busy is not None else None, ".0f") + ("%" if busy is not None else ""),
            " ".join(filter(None, [f"[red]{errors}[/]" if errors else "", note])),
        )
    console.print(table)

    summary = Table(title="Against the targets")
    summary.add_column("gateway variant")
    summary.add_column("scenario")
    summary.add_column(
        f"req/s vs direct at {load_connections} conns (≥ {MIN_RPS_RATIO:.0%})", justify="right"
    )
    summary.add_column(f"added p50 at 1 conn (< {MAX_ADDED_P50_MS} ms)", justify="right")
    pairs = sorted({(c.target, c.scenario) for c in comparisons})
    for target, scenario in pairs:
        load = by_key.get((target, scenario, load_connections))
        single = by_key.get((target, scenario, 1))
        summary.add_row(
            target,
            scenario,
            f"{load.rps_ratio:.0%}{_mark(load.meets.get('rps_ratio'))}" if load else "-",
            f"{single.added_p50_ms:+.3f} ms{_mark(single.meets.get('added_p50'))}" if single else "-",
        )
    console.print(summary)


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
