"""What a result was measured on, and whether this machine can run the benchmark at all.

Figures from different machines or commits are not comparable, so every result file records the CPU,
the commit (and whether src/ had uncommitted changes), and the tool versions next to the numbers.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from maas_gateway import __version__
from wrk import wrk_version

__all__ = ["describe", "problems"]

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
