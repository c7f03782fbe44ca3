"""One view of the metrics of every ``--workers`` process, through prometheus_client's multiprocess mode.

Each worker keeps its metric values in memory-mapped files in one directory, named by
``PROMETHEUS_MULTIPROC_DIR`` before the worker imports prometheus_client (docs/decisions.md says why this
and not a metrics process). The supervisor creates a fresh directory for each run, so no value of an
earlier run is counted, and a scrape merges every file: counters and histograms of workers that have
exited still count (a pod's totals never go back), their live gauges do not.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

__all__ = [
    "MULTIPROCESS_ENV",
    "forget_dead_processes",
    "render_directory",
    "retire_process",
    "shared_directory",
    "workers_directory",
]

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

logger = logging.getLogger("maas_gateway")


def shared_directory() -> Path | None:
    """The directory this process's metric values live in, when it is one of several workers."""
    value = os.environ.get(MULTIPROCESS_ENV)
    return Path(value) if value else None


@contextlib.contextmanager
def workers_directory() -> Iterator[Path]:
    """A fresh directory for the workers' metric files, named in the environment they will inherit.

    Workers are started afterwards (uvicorn spawns them), so they import prometheus_client with it set.
    The directory is removed at the end.
    """
    directory = Path(tempfile.mkdtemp(prefix="maas-metrics-"))
    previous = os.environ.get(MULTIPROCESS_ENV)
    os.environ[MULTIPROCESS_ENV] = str(directory)
    try:
        yield directory
    finally:
        if previous is None:
            os.environ.pop(MULTIPROCESS_ENV, None)
        else:
            os.environ[MULTIPROCESS_ENV] = previous
        shutil.rmtree(directory, ignore_errors=True)


def render_directory(directory: Path) -> bytes:
    """The Prometheus text of every worker's metrics in ``directory``, merged."""
    forget_dead_processes(directory)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(directory))  # type: ignore[no-untyped-call]  # unannotated upstream
    return generate_latest(registry)


def forget_dead_processes(directory: Path) -> None:
    """Stop counting the live gauges of workers that died without retiring themselves (killed).

    A worker that stops normally retires itself; one killed by a signal leaves its files, and its last
    gauge values would otherwise be added to the pod's forever.
    """
    for path in directory.glob("gauge_live*_*.db"):
        pid_text = path.stem.rpartition("_")[2]
        if pid_text.isdigit() and not _alive(int(pid_text)):
            logger.info("Metrics: worker %s is gone; its live gauges no longer count.", pid_text)
            retire_process(int(pid_text), directory)


def retire_process(pid: int, directory: Path) -> None:
    """Stop counting the live gauges of ``pid`` (a worker that is stopping); its counters still count."""
    mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]  # unannotated upstream


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: the pid was reused, but it exists
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """A killed worker the supervisor has not reaped yet still answers ``kill(pid, 0)``, but is dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (not Linux), or the process just went
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]
