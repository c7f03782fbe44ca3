"""Benchmark the gateway against the simulator it fronts, on one gateway core, in one command.

Usage: ``.venv/bin/python bench/run.py [--quick] [--duration 10s]`` (or ``make bench``).

It starts ``maas sim`` and then, one at a time, a gateway per variant (limits off, limits on, access log
off), each on a free loopback port. The gateway is pinned to one CPU and the simulator and wrk to
another, so the gateway's figures mean "what one core of gateway does" and the load generator never
steals that core. Every scenario (non-streaming and streaming chat, at 32 connections and at 1) is
measured directly against the simulator and through each gateway, after a warm-up run. The results are
printed as tables and written to ``bench/results/latest.json``; see bench/README.md for how to read them.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import yaml
from rich.console import Console

import environment
from report import DIRECT, Measurement, compare, print_tables, write_json
from services import BENCH_KEY, Service, free_port, gateway_config, http_request, maas_command
from wrk import WrkError, run_wrk, write_script

__all__ = ["SCENARIOS", "VARIANTS", "Settings", "Variant", "main", "parse_args"]

HERE = Path(__file__).resolve().parent
_MESSAGES = [{"role": "user", "content": "Write one sentence about gateways."}]
SCENARIOS: dict[str, dict[str, Any]] = {
    "chat": {"model": "simulator-model", "messages": _MESSAGES},
    "stream": {"model": "simulator-model", "messages": _MESSAGES, "stream": True},
}
PATH = "/v1/chat/completions"
BUSY_WARNING = 0.10  # share of a core in use by other processes before the run that earns a warning
HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {BENCH_KEY}"}


@dataclass(frozen=True, slots=True)
class Variant:
    """One gateway configuration to measure."""

    name: str
    limits: bool
    access_log: bool


VARIANTS = {
    v.name: v
    for v in (
        Variant("limits-off", limits=False, access_log=True),
        Variant("limits-on", limits=True, access_log=True),
        Variant("no-access-log", limits=False, access_log=False),
    )
}


@dataclass(frozen=True, slots=True)
class Settings:
    duration_s: float
    warmup_s: float
    connections: tuple[int, ...]
    scenarios: tuple[str, ...]
    variants: tuple[Variant, ...]
    gateway_cpu: int | None
    load_cpu: int | None
    output: Path
    log_dir: Path | None
    check: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "duration_s": self.duration_s,
            "warmup_s": self.warmup_s,
            "connections": list(self.connections),
            "scenarios": list(self.scenarios),
            "variants": [v.name for v in self.variants],
            "gateway_cpu": self.gateway_cpu,
            "load_cpu": self.load_cpu,
        }


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration such as 10s, 500ms or 1m")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match.group(2)]
    return float(match.group(1)) * scale


def _names(text: str, known: Sequence[str]) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(known)} (comma separated)")
    return names


def parse_args(argv: Sequence[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=_seconds, help="length of each measured run (default 10s)")
    parser.add_argument("--warmup", type=_seconds, help="warm-up run before each measurement (default 2s)")
    parser.add_argument("--quick", action="store_true", help="3 s runs and 1 s warm-ups: a smoke run")
    parser.add_argument("--connections", default="32,1", help="connection counts, largest first (32,1)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="chat,stream")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"{','.join(VARIANTS)}")
    parser.add_argument("--gateway-cpu", type=int, default=0, help="CPU for the gateway (0)")
    parser.add_argument("--load-cpu", type=int, default=1, help="CPU for the simulator and wrk (1)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes with taskset")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument("--log-dir", type=Path, help="keep the scripts, configs and server logs here")
    parser.add_argument("--check", action="store_true", help="exit with status 1 if a target is missed")
    args = parser.parse_args(argv)
    try:
        connections = tuple(sorted({int(c) for c in args.connections.split(",")}, reverse=True))
        scenarios = _names(args.scenarios, list(SCENARIOS))
        variants = tuple(VARIANTS[n] for n in _names(args.variants, list(VARIANTS)))
    except (ValueError, argparse.ArgumentTypeError) as exc:
        parser.error(str(exc))
    if not connections or min(connections) < 1:
        parser.error("--connections must be positive integers")
    return Settings(
        duration_s=args.duration or (3.0 if args.quick else 10.0),
        warmup_s=args.warmup or (1.0 if args.quick else 2.0),
        connections=connections,
        scenarios=scenarios,
        variants=variants,
        gateway_cpu=None if args.no_pin else args.gateway_cpu,
        load_cpu=None if args.no_pin else args.load_cpu,
        output=args.output,
        log_dir=args.log_dir,
        check=args.check,
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


def measure_one(
    settings: Settings, script: Path, m: Measurement, server: Service, simulator: Service, gateway: bool
) -> None:
    """Warm up, then measure one scenario at one connection count; fill in ``m``."""
    m.error = preflight(server.port, m.scenario)
    if m.error is not None:
        return
    url = server.url + PATH
    try:
        run_wrk(url, script, connections=m.connections, duration_s=settings.warmup_s, cpu=settings.load_cpu)
        gateway_before, sim_before = server.cpu_seconds(), simulator.cpu_seconds()
        m.result = run_wrk(
            url, script, connections=m.connections, duration_s=settings.duration_s, cpu=settings.load_cpu
        )
        m.gateway_cpu_s = server.cpu_seconds() - gateway_before if gateway else None
        m.simulator_cpu_s = simulator.cpu_seconds() - sim_before
    except WrkError as exc:
        m.error = str(exc)
        return
    if m.result.error_count or not m.result.requests:
        m.error = m.result.describe_errors() or "no request completed"


def measure(
    settings: Settings,
    scripts: dict[str, Path],
    target: str,
    server: Service,
    simulator: Service,
    console: Console,
) -> list[Measurement]:
    """Every scenario at every connection count against ``server`` (the simulator or a gateway)."""
    out = []
    for scenario in settings.scenarios:
        for connections in settings.connections:
            m = Measurement(target, scenario, connections)
            measure_one(settings, scripts[scenario], m, server, simulator, gateway=server is not simulator)
            for service in {server, simulator}:
                service.check_alive()  # a crashed server is fatal, not a slow scenario
            r = m.result
            figures = f"{r.rps:9,.0f} req/s  p50 {r.p50_ms:7.3f} ms  p99 {r.p99_ms:7.3f} ms" if r else ""
            error = f"  [red]{m.error}[/]" if m.error else ""
            console.print(
                f"  {target:<14} {scenario:<6} c={connections:<3} {figures}{error}", highlight=False
            )
            out.append(m)
    return out


def run(settings: Settings, work: Path, console: Console) -> list[Measurement]:
    """Start the simulator, measure it directly, then each gateway variant in turn; stop everything."""
    scripts = {
        s: write_script(work / f"{s}.lua", json.dumps(body).encode(), HEADERS)
        for s, body in SCENARIOS.items()
    }
    measurements: list[Measurement] = []
    port = free_port()
    args = maas_command("sim", "--port", str(port))
    log = work / "simulator.log"
    with Service("simulator", args, port, log, cpu=settings.load_cpu, ready_path="/health") as simulator:
        console.print(f"[bold]{DIRECT}[/]: simulator at {simulator.url}, CPU {settings.load_cpu}")
        measurements += measure(settings, scripts, DIRECT, simulator, simulator, console)
        for variant in settings.variants:
            port = free_port()
            config = gateway_config(simulator.url, port, limits=variant.limits, access_log=variant.access_log)
            path = work / f"gateway-{variant.name}.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False), "utf-8")
            args = maas_command("serve", "--config", str(path), "--log-level", "warning")
            log = work / f"gateway-{variant.name}.log"
            name = f"gateway {variant.name}"
            with Service(name, args, port, log, cpu=settings.gateway_cpu, ready_path="/ready") as gateway:
                console.print(
                    f"[bold]{variant.name}[/]: gateway at {gateway.url}, CPU {settings.gateway_cpu}"
                )
                measurements += measure(settings, scripts, variant.name, gateway, simulator, console)
    return measurements


def _check_quiet(console: Console, cpus: Sequence[int]) -> dict[str, float]:
    """Measure how busy the benchmark's cores are before it starts, and warn if they are not idle."""
    load = environment.background_load(cpus or [0, 1])
    busy = {cpu: share for cpu, share in load.items() if share > BUSY_WARNING}
    if busy:
        shares = ", ".join(f"CPU {cpu} {share:.0%}" for cpu, share in busy.items())
        console.print(
            f"[yellow]Warning: other work is using the benchmark's cores ({shares}); figures will be low.[/]"
        )
    return {f"cpu{cpu}": round(share, 3) for cpu, share in load.items()}


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every `with Service`, which stops its child


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    # Piped output (CI logs, `| tee`) would otherwise be cut to 80 columns, too narrow for the table.
    console = Console() if sys.stdout.isatty() else Console(width=170)
    cpus = [c for c in (settings.gateway_cpu, settings.load_cpu) if c is not None]
    problem = environment.problems(cpus, pin=bool(cpus))
    if problem:
        console.print(f"[red]{problem}[/]")
        return 2
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    meta = environment.describe()
    meta["background_load_before"] = _check_quiet(console, cpus)
    console.print(f"maas-gateway {meta['maas_gateway']} ({meta['git_commit']}), {meta['wrk']}")
    console.print(f"{settings.duration_s:g} s runs, each after a {settings.warmup_s:g} s warm-up")
    try:
        with tempfile.TemporaryDirectory(prefix="maas-bench-") as temp:
            work = settings.log_dir or Path(temp)
            work.mkdir(parents=True, exist_ok=True)
            measurements = run(settings, work, console)
    except KeyboardInterrupt:
        console.print("[red]Interrupted; every child process has been stopped.[/]")
        return 130
    except RuntimeError as exc:
        console.print(f"[red]The benchmark could not run: {exc}[/]", highlight=False)
        return 2
    load = settings.connections[0]
    comparisons = compare(measurements, load)
    print_tables(console, measurements, comparisons, load)
    meta["settings"] = settings.as_dict()
    write_json(settings.output, meta, measurements, comparisons)
    console.print(f"Results written to {settings.output}")
    failed = [m for m in measurements if m.error]
    if failed:
        console.print(f"[red]{len(failed)} run(s) had errors; their figures are not to be trusted.[/]")
    missed = any(not ok for c in comparisons for ok in c.meets.values())
    return 1 if failed or (settings.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
