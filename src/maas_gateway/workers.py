"""`maas serve --workers N`: uvicorn's supervisor, except that SIGHUP reloads each worker in place.

uvicorn's ``Multiprocess`` answers SIGHUP by replacing every worker, and a worker that exits closes its
keep-alive connections under its clients (one or two failed requests per reload under load). Here the
supervisor passes SIGHUP on to its live workers, and each re-reads the configuration file in its event
loop as the single-process gateway does (``GatewayApp.reload``, which asks the application root),
reporting the outcome on the reload board (reload_status.py) for `maas reload`. A worker that crashes
is replaced as before and reads the file as it is then.

A worker handles SIGHUP once its application has started. Until then the signal is blocked, not fatal: the
supervisor blocks SIGHUP in the thread that starts workers, a started process keeps that signal mask
through ``exec``, and the worker unblocks it once its handler exists, so a SIGHUP sent meanwhile is
delivered then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable, Iterator
from typing import Any

from uvicorn.lifespan.on import LifespanOn
from uvicorn.supervisors import Multiprocess

from maas_gateway.edge_limits import EdgeConfig, EdgeLimits
from maas_gateway.reload_status import ReloadBoard, ReloadOutcome, reload_and_report

__all__ = ["ReloadingLifespan", "Supervisor", "WorkerConfig", "hangup_blocked"]

logger = logging.getLogger("maas_gateway")


@contextlib.contextmanager
def hangup_blocked() -> Iterator[None]:
    """Hold SIGHUP pending in this thread (and in the processes it starts) until the block ends."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class WorkerConfig(EdgeConfig):
    """The workers' uvicorn configuration: the edge limits, the reload board and a lifespan for SIGHUP.

    It is pickled into each worker process, the board (a directory's path) with it.
    """

    def __init__(
        self, app: Any, *, edge: EdgeLimits, reload_board: ReloadBoard | None, **settings: Any
    ) -> None:
        super().__init__(app, edge=edge, **settings)
        self.reload_board = reload_board

    def load(self) -> None:
        super().load()
        self.lifespan_class = ReloadingLifespan


class ReloadingLifespan(LifespanOn):
    """The application's lifespan, after whose startup SIGHUP reloads the application in its event loop."""

    async def startup(self) -> None:
        await super().startup()
        if self.should_exit:
            return  # the application did not start; the worker stops
        board = self.config.reload_board if isinstance(self.config, WorkerConfig) else None
        reload = _reload_method(self.config.loaded_app)
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload_and_report, reload, board)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})  # blocked since the process started


def _reload_method(app: Any) -> Callable[[], ReloadOutcome]:
    """The application's ``reload``; uvicorn wraps no middleware around it with the gateway's settings."""
    reload = getattr(app, "reload", None)
    if not callable(reload):
        raise TypeError(f"The worker's application {app!r} has no reload(), so SIGHUP cannot reload it.")
    return reload  # type: ignore[no-any-return]  # a GatewayApp's reload, which returns a ReloadOutcome


class Supervisor(Multiprocess):
    """uvicorn's worker supervisor, passing SIGHUP on to the workers instead of replacing them.

    Every method of uvicorn's that starts workers runs with SIGHUP blocked, so that new workers start with
    it blocked (see the module's docstring).
    """

    def __init__(self, config: WorkerConfig, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets)  # installs the supervisor's signal handlers
        self.reload_board = config.reload_board
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})  # `maas serve` blocked it at start

    def init_processes(self) -> None:
        with hangup_blocked():
            super().init_processes()

    def keep_subprocess_alive(self) -> None:
        with hangup_blocked():
            super().keep_subprocess_alive()

    def handle_ttin(self) -> None:
        with hangup_blocked():
            super().handle_ttin()

    def restart_all(self) -> None:
        with hangup_blocked():
            super().restart_all()

    def handle_hup(self) -> None:
        generation = self.reload_board.requested() if self.reload_board is not None else 0
        signalled: list[int] = []
        for process in self.processes:
            if process.pid is None or process.exitcode is not None:
                continue  # ended: keep_subprocess_alive replaces it, and the replacement reads the file
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGHUP)
                signalled.append(process.pid)
        logger.info("Received SIGHUP: %d worker(s) reload the configuration file.", len(signalled))
        if self.reload_board is None:
            return
        try:
            self.reload_board.announce(generation, signalled)
        except OSError as exc:
            logger.warning(
                "The reload cannot be announced in %s (%s), so `maas reload` waits for it in vain.",
                self.reload_board.directory,
                exc.strerror,
            )
