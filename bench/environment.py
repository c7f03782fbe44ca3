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

__all__ = ["background_load", "describe", "problems"]

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


def _busy_and_total() -> dict[str, tuple[int, int]]:
    """Per CPU (``cpu0``, ``cpu1``...), clock ticks spent busy and in all, from ``/proc/stat``."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name != "cpu":
            ticks = [int(f) for f in fields]
            idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle and iowait
            out[name] = (sum(ticks[:8]) - idle, sum(ticks[:8]))
    return out


def background_load(cpus: Sequence[int], seconds: float = 1.0) -> dict[int, float]:
    """How busy each of ``cpus`` is over ``seconds`` while the benchmark runs nothing.

    Other work on these cores (a test suite, a build) lowers every figure, so the share is shown and
    recorded with the results; an empty answer means it could not be read (not Linux).
    """
    try:
        before = _busy_and_total()
        time.sleep(seconds)
        after = _busy_and_total()
    except (OSError, ValueError, IndexError):
        return {}
    load = {}
    for cpu in cpus:
        key = f"cpu{cpu}"
        if key in before and key in after:
            busy = after[key][0] - before[key][0]
            total = after[key][1] - before[key][1]
            load[cpu] = busy / total if total else 0.0
    return load
