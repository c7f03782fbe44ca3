"""Benchmark the gateway against the backend it fronts, on one gateway core, in one command.

Usage: ``.venv/bin/python bench/run.py [--quick] [--duration 10s] [--repeat 3]`` (or ``make bench``).

For each backend (the simulator ``maas sim``, and a minimal uvloop + httptools server far cheaper per
request than the gateway, bench/fast_backend.py) it starts the backend and then, one at a time, a gateway
per variant (limits off, limits on, access log off), each on a free loopback port. The gateway is pinned
to one CPU and the backend and wrk to another, so the gateway's figures mean "what one core of gateway
does" and the load generator never steals that core. Every scenario (non-streaming and streaming chat,
at 32 connections and at 1) is measured directly against the backend and through each gateway, after a
warm-up run. The results are printed as tables and written to ``bench/results/latest.json``; see
bench/README.md for how to read them.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import yaml
from rich.console import Console

import environment
from measure import HEADERS, SCENARIOS, Plan, connection_counts, measure
from report import DIRECT, Measurement, compare, print_tables, write_json
from services import BACKENDS, Backend, Service, free_port, gateway_config, maas_command
from wrk import write_script

__all__ = ["VARIANTS", "Settings", "Variant", "main", "parse_args", "run"]

HERE = Path(__file__).resolve().parent
BUSY_WARNING = 0.10  # share of a core in use by other processes before the run that earns a warning


@dataclass(frozen=True, slots=True)
class Variant:
    """One gateway configuration to measure."""

    name: str
    limits: bool
    access_log: bool
    storage: str = "memory"  # or a redis:// URL: limits shared through Redis
    ledger: bool = False  # write the usage ledger to a SQLite file (else: in memory)
    workers: int = 1  # more than one runs unpinned: the workers need both cores


REDIS = "redis://127.0.0.1:6379/15"
VARIANTS = {
    v.name: v
    for v in (
        Variant("limits-off", limits=False, access_log=True),
        Variant("limits-on", limits=True, access_log=True),
        Variant("no-access-log", limits=False, access_log=False),
        Variant("limits-redis", limits=True, access_log=True, storage=REDIS),
        Variant("ledger-sqlite", limits=True, access_log=True, ledger=True),
        Variant("redis-2-workers", limits=True, access_log=True, storage=REDIS, workers=2),
    )
}


@dataclass(frozen=True, slots=True)
class Settings:
    plan: Plan
    backends: tuple[Backend, ...]
    variants: tuple[Variant, ...]
    output: Path
    log_dir: Path | None
    check: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self.plan),
            "backends": [b.name for b in self.backends],
            "variants": [asdict(v) for v in self.variants],
        }


def _seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration such as 10s, 500ms or 1m")
    return float(match.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[match.group(2)]


def _names(text: str, known: Sequence[str]) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names or any(n not in known for n in names):
        raise argparse.ArgumentTypeError(f"choose from {', '.join(known)} (comma separated)")
    return names


def parse_args(argv: Sequence[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--duration", type=_seconds, help="length of each measured run (default 10s)")
    add("--warmup", type=_seconds, help="warm-up run before each measurement (default 2s)")
    add("--quick", action="store_true", help="3 s runs after 1 s warm-ups: a smoke run")
    add("--repeat", type=int, default=1, help="measured runs per scenario; the median is kept (1)")
    add("--connections", default="32,1", help="connection counts; the largest is the load (32,1)")
    add("--scenarios", default=",".join(SCENARIOS), help=f"from {','.join(SCENARIOS)}")
    add("--variants", default=",".join(VARIANTS), help=f"from {','.join(VARIANTS)}")
    add(
        "--backends",
        default=",".join(BACKENDS),
        help=f"backends to measure and front, from {','.join(BACKENDS)}",
    )
    add("--gateway-cpu", type=int, default=0, help="CPU for the gateway (0)")
    add("--load-cpu", type=int, default=1, help="CPU for the backend and wrk (1)")
    add("--no-pin", action="store_true", help="let the scheduler place every process")
    add(
        "--wait-quiet",
        type=_seconds,
        default=0.0,
        help="before each scenario, wait up to this long for idle cores",
    )
    add("--output", type=Path, default=HERE / "results" / "latest.json", help="the JSON result file")
    add("--log-dir", type=Path, help="keep the Lua scripts, configs and server logs in this directory")
    add("--check", action="store_true", help="exit with status 1 if a target is missed")
    args = parser.parse_args(argv)
    try:
        connections = tuple(connection_counts(args.connections))
        scenarios = _names(args.scenarios, list(SCENARIOS))
        variants = tuple(VARIANTS[n] for n in _names(args.variants, list(VARIANTS)))
        backends = tuple(BACKENDS[n] for n in _names(args.backends, list(BACKENDS)))
    except (ValueError, argparse.ArgumentTypeError) as exc:
        parser.error(str(exc))
    if not connections or min(connections) < 1 or args.repeat < 1:
        parser.error("--connections and --repeat must be positive integers")
    plan = Plan(
        duration_s=args.duration or (3.0 if args.quick else 10.0),
        warmup_s=args.warmup or (1.0 if args.quick else 2.0),
        repeat=args.repeat,
        connections=connections,
        scenarios=scenarios,
        gateway_cpu=None if args.no_pin else args.gateway_cpu,
        load_cpu=None if args.no_pin else args.load_cpu,
        wait_quiet_s=args.wait_quiet,
    )
    return Settings(plan, backends, variants, args.output, args.log_dir, args.check)


def run(settings: Settings, work: Path, console: Console) -> list[Measurement]:
    """For each backend: start it, measure it directly, then each gateway variant in front of it in turn;
    stop everything."""
    scripts = {
        name: write_script(work / f"{name}.lua", json.dumps(body).encode(), HEADERS)
        for name, body in SCENARIOS.items()
    }
    measurements: list[Measurement] = []
    for backend in settings.backends:
        measurements += _run_backend(settings, backend, scripts, work, console)
    return measurements


def _run_backend(
    settings: Settings, backend: Backend, scripts: dict[str, Path], work: Path, console: Console
) -> list[Measurement]:
    """Start ``backend``, measure it directly, then each gateway variant in front of it; stop them."""
    plan = settings.plan
    measurements: list[Measurement] = []
    port = free_port()
    log = work / f"backend-{backend.name}.log"
    cpu = plan.load_cpu
    with Service(backend.name, backend.command(port), port, log, cpu=cpu, ready_path="/health") as server:
        console.print(f"[bold]{backend.name} {DIRECT}[/]: {backend.description} at {server.url}, CPU {cpu}")
        measurements += measure(plan, scripts, backend.name, DIRECT, server, server, console)
        for variant in settings.variants:
            port = free_port()
            config = gateway_config(server.url, port, limits=variant.limits, access_log=variant.access_log)
            config["limits"]["storage"] = variant.storage
            if variant.ledger:
                # A database and spool per gateway: no gateway replays what an earlier one left behind.
                config["database"] = {
                    "url": f"sqlite+aiosqlite:///{work / f'{backend.name}-{variant.name}.db'}",
                    "spool_dir": str(work / f"spool-{backend.name}-{variant.name}"),
                }
            path = work / f"gateway-{backend.name}-{variant.name}.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False), "utf-8")
            args = maas_command(
                "serve", "--config", str(path), "--log-level", "warning", "--workers", str(variant.workers)
            )
            log = work / f"gateway-{backend.name}-{variant.name}.log"
            name = f"gateway {variant.name}"
            gateway_cpu = plan.gateway_cpu if variant.workers == 1 else None
            with Service(name, args, port, log, cpu=gateway_cpu, ready_path="/ready") as gateway:
                where = (
                    f"{variant.workers} workers, unpinned" if gateway_cpu is None else f"CPU {gateway_cpu}"
                )
                console.print(f"[bold]{backend.name} {variant.name}[/]: gateway at {gateway.url}, {where}")
                measurements += measure(plan, scripts, backend.name, variant.name, gateway, server, console)
    return measurements


def _check_quiet(console: Console, cpus: Sequence[int]) -> dict[str, float]:
    """Measure how busy the benchmark's cores are before it starts, and warn if they are not idle."""
    load = environment.background_load(cpus or [0, 1])
    busy = ", ".join(f"CPU {cpu} {share:.0%}" for cpu, share in load.items() if share > BUSY_WARNING)
    if busy:
        console.print(f"[yellow]Other work is using the benchmark's cores ({busy}): figures will be low.[/]")
    return {f"cpu{cpu}": round(share, 3) for cpu, share in load.items()}


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every `with Service`, which stops its child


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    plan = settings.plan
    # Piped output (CI logs, `| tee`) would otherwise be cut to 80 columns, too narrow for the table.
    console = Console() if sys.stdout.isatty() else Console(width=170)
    cpus = [c for c in (plan.gateway_cpu, plan.load_cpu) if c is not None]
    problem = environment.problems(cpus, pin=bool(cpus))
    if problem:
        console.print(f"[red]{problem}[/]")
        return 2
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    meta = environment.describe()
    console.print(f"maas-gateway {meta['maas_gateway']} ({meta['git_commit']}), {meta['wrk']}")
    runs = f"{plan.repeat} runs" if plan.repeat > 1 else "one run"
    console.print(f"Each scenario: a {plan.warmup_s:g} s warm-up, then {runs} of {plan.duration_s:g} s")
    meta["background_load_before"] = _check_quiet(console, cpus)
    try:
        with tempfile.TemporaryDirectory(prefix="maas-bench-") as temp:
            work = (settings.log_dir or Path(temp)).resolve()
            work.mkdir(parents=True, exist_ok=True)
            measurements = run(settings, work, console)
    except KeyboardInterrupt:
        console.print("[red]Interrupted; every child process has been stopped.[/]")
        return 130
    except SystemExit:
        console.print("[red]Stopped by a signal; every child process has been stopped.[/]")
        raise
    except RuntimeError as exc:
        console.print(f"[red]The benchmark could not run: {exc}[/]", highlight=False)
        return 2
    load = plan.connections[0]
    comparisons = compare(measurements, load)
    backends = {b.name: b.description for b in settings.backends}
    print_tables(console, measurements, comparisons, load, backends)
    meta["settings"] = settings.as_dict()
    write_json(settings.output, meta, measurements, comparisons)
    console.print(f"Results written to {settings.output}")
    failed = [m for m in measurements if m.error]
    if failed:
        console.print(f"[red]{len(failed)} run(s) had errors; their figures are not to be trusted.[/]")
    if any(m.disturbed for m in measurements):
        console.print("[yellow]Some runs shared their cores with other processes (see notes).[/]")
    missed = any(not ok for c in comparisons for ok in c.meets.values())
    return 1 if failed or (settings.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
