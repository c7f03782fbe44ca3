"""What a result was measured on, and whether this machine can run the benchmark at all.

Figures from different machines or commits are not comparable, so every result file records the CPU,
the commit (and whether src/ had uncommitted changes), and the tool versions next to the numbers.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from maas_gateway import __version__
from wrk import wrk_version

__all__ = ["background_load", "busy_seconds", "describe", "problems"]

_REPO = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=_REPO, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")


def describe() -> dict[str, Any]:
    """The date, code version, machine and tools, for the head of the result file."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "maas_gateway": __version__,
        "git_commit": _git("rev-parse", "--short", "HEAD") or "unknown",
        "src_uncommitted_changes": bool(_git("status", "--porcelain", "--", "src")),
        "machine": {"cpu": _cpu_model(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "python": platform.python_version(),
        "wrk": wrk_version(),
    }


def problems(cpus: Sequence[int], pin: bool) -> str | None:
    """Why the benchmark cannot run here (a missing tool, a CPU it may not use), or ``None``."""
    tools = ["wrk", "taskset"] if pin else ["wrk"]
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not found on PATH."
    if pin and hasattr(os, "sched_getaffinity"):
        allowed = os.sched_getaffinity(0)
        if any(cpu not in allowed for cpu in cpus):
            return (
                f"CPUs {list(cpus)} are not all available (allowed: {sorted(allowed)}); "
                "choose others with --gateway-cpu/--load-cpu, or use --no-pin."
            )
        if len(set(cpus)) < len(cpus):
            return "--gateway-cpu and --load-cpu must differ, or the load would steal the gateway's core."
    return None


def busy_seconds() -> dict[int, float]:
    """CPU number to seconds spent running anything since boot, from ``/proc/stat``; empty if unknown.

    Counted are user, nice, system and steal time (steal is the hypervisor running someone else): what
    a process on that core has to share it with. Interrupt time is left out, since much of it is the
    benchmark's own loopback traffic.
    """
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return {}
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and len(fields) >= 8:
            user, nice, system, steal = (int(fields[i]) for i in (0, 1, 2, 7))
            out[int(name[3:])] = (user + nice + system + steal) / tick
    return out


def background_load(cpus: Sequence[int], seconds: float = 1.0) -> dict[int, float]:
    """How busy each of ``cpus`` is over ``seconds`` while the benchmark runs nothing.

    Other work on these cores (a test suite, a build) lowers every figure, so the share is shown and
    recorded with the results; an empty answer means it could not be read (not Linux).
    """
    before, start = busy_seconds(), time.monotonic()
    time.sleep(seconds)
    after, elapsed = busy_seconds(), time.monotonic() - start
    return {cpu: (after[cpu] - before[cpu]) / elapsed for cpu in cpus if cpu in before and cpu in after}
