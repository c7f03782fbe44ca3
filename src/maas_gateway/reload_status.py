"""How `maas reload` learns that every serving process of a gateway applied its configuration file.

A gateway started with ``--pid-file P`` keeps a directory beside it, ``P.reload/`` (the reload board):

- ``request``: the generation of the latest reload asked for, a counter `maas reload` increments;
- ``signalled.json``: the generation the process that got SIGHUP had read, and the processes it passed
  the signal on to (the workers of ``--workers N``, or the single process itself);
- ``<pid>.json``: what that serving process made of its latest reload: the generation it read before it
  read the file, and whether it applied the file or refused it (and why).

A process reads the generation before it reads the configuration file, so a report of generation N or
later says that the file was read after `maas reload` asked for N. Files are replaced whole
(``os.replace``), so a reader never sees half of one; processes that have ended are not waited for.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ReloadBoard",
    "ReloadFailed",
    "ReloadOutcome",
    "Report",
    "board_beside",
    "reload_and_report",
    "wait_for_reports",
]

logger = logging.getLogger("maas_gateway")

_REQUEST = "request"
_SIGNALLED = "signalled.json"


@dataclass(frozen=True)
class ReloadOutcome:
    """What one serving process made of a reload.

    ``refusal`` says why the file was refused (the process keeps its configuration); it is None when the
    file was applied. ``needs_restart`` names changed settings that only a restart applies.
    """

    refusal: str | None = None
    needs_restart: tuple[str, ...] = ()

    @property
    def applied(self) -> bool:
        return self.refusal is None


@dataclass(frozen=True)
class Report:
    """A serving process's outcome of the reload it performed for ``generation`` (or a later one)."""

    generation: int
    outcome: ReloadOutcome


class ReloadFailed(Exception):
    """`maas reload` cannot tell that the gateway serves the file; the message says why, in one sentence."""


def board_beside(pid_file: Path) -> Path:
    """The reload board of the gateway that wrote ``pid_file``."""
    return pid_file.with_name(pid_file.name + ".reload")


class ReloadBoard:
    """The directory where a gateway's processes report reloads and where `maas reload` reads them."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    # The gateway's side.

    def open(self) -> None:
        """Create the directory, or reuse the one a killed gateway left, forgetting its reports."""
        self.directory.mkdir(mode=0o700, exist_ok=True)
        for path in self.directory.glob("*.json"):
            path.unlink(missing_ok=True)

    def close(self) -> None:
        """Remove the directory when the gateway stops, as its pid file is removed."""
        with contextlib.suppress(OSError):
            for path in self.directory.iterdir():
                path.unlink(missing_ok=True)
            self.directory.rmdir()

    def requested(self) -> int:
        """The generation of the latest reload asked for (0 before the first)."""
        try:
            return int((self.directory / _REQUEST).read_text("utf-8"))
        except (OSError, ValueError):
            return 0

    def announce(self, generation: int, pids: Iterable[int]) -> None:
        """Record that SIGHUP, read as ``generation``, was passed on to ``pids``."""
        self._write(_SIGNALLED, {"generation": generation, "pids": sorted(pids)})

    def report(self, pid: int, generation: int, outcome: ReloadOutcome) -> None:
        """Record what process ``pid`` made of the reload it performed for ``generation``."""
        data = {"generation": generation, "refusal": outcome.refusal, "needs_restart": outcome.needs_restart}
        self._write(f"{pid}.json", data)

    # The side of `maas reload`.

    def request(self) -> int:
        """Ask for a reload: the next generation, which the gateway's processes will report."""
        with (self.directory / f"{_REQUEST}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two `maas reload` at once get two generations
            generation = self.requested() + 1
            self._replace(_REQUEST, f"{generation}\n")
        return generation

    def signalled(self) -> tuple[int, list[int]] | None:
        """The generation and the processes of the latest SIGHUP passed on, if any was."""
        data = self._read(_SIGNALLED)
        if data is None:
            return None
        return int(data["generation"]), [int(pid) for pid in data["pids"]]

    def report_of(self, pid: int) -> Report | None:
        data = self._read(f"{pid}.json")
        if data is None:
            return None
        outcome = ReloadOutcome(data["refusal"], tuple(data["needs_restart"]))
        return Report(int(data["generation"]), outcome)

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            data = json.loads((self.directory / name).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _write(self, name: str, data: dict[str, Any]) -> None:
        self._replace(name, json.dumps(data))

    def _replace(self, name: str, text: str) -> None:
        temporary = self.directory / f".{name}.{os.getpid()}.tmp"
        temporary.write_text(text, "utf-8")
        os.replace(temporary, self.directory / name)


def reload_and_report(
    reload: Callable[[], ReloadOutcome], board: ReloadBoard | None, announce: bool = False
) -> None:
    """Reload (on SIGHUP) and report the outcome on ``board``, if the gateway keeps one.

    The generation is read before ``reload`` reads the file (see the module's docstring). ``announce`` is
    for a gateway of one process, which both receives the signal and serves.
    """
    generation = board.requested() if board is not None else 0
    outcome = reload()
    if board is None:
        return
    pid = os.getpid()
    try:
        board.report(pid, generation, outcome)
        if announce:
            board.announce(generation, [pid])
    except OSError as exc:
        logger.warning(
            "The outcome of the reload cannot be written to %s (%s), so `maas reload` waits for it in vain.",
            board.directory,
            exc.strerror,
        )


def wait_for_reports(
    board: ReloadBoard, generation: int, gateway_pid: int, timeout: float, poll: float = 0.02
) -> dict[int, ReloadOutcome]:
    """Wait until every live process the gateway signalled reported ``generation`` or a later one.

    Returns their outcomes by process id; raises ``ReloadFailed`` when the gateway ends or ``timeout``
    seconds pass first. A process that ended is not waited for: its replacement read the file at start.
    """
    deadline = time.monotonic() + timeout
    while True:
        if not _running(gateway_pid):
            raise ReloadFailed(f"The gateway process {gateway_pid} ended before it reloaded.")
        signalled = board.signalled()
        pending: list[int] = []
        if signalled is not None and signalled[0] >= generation:
            outcomes: dict[int, ReloadOutcome] = {}
            for pid in signalled[1]:
                report = board.report_of(pid)
                if report is not None and report.generation >= generation:
                    outcomes[pid] = report.outcome
                elif _running(pid):
                    pending.append(pid)
            if not pending:
                return outcomes
        if time.monotonic() >= deadline:
            if signalled is None or signalled[0] < generation:
                raise ReloadFailed(
                    f"The gateway process {gateway_pid} did not pass the reload on within {timeout:g}s."
                )
            waited = ", ".join(str(pid) for pid in pending)
            raise ReloadFailed(
                f"The gateway's process(es) {waited} did not apply or refuse the file within {timeout:g}s."
            )
        time.sleep(poll)


def _running(pid: int) -> bool:
    """Whether ``pid`` runs; a killed worker its supervisor has not reaped yet (a zombie) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (not Linux), or the process just ended
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]
