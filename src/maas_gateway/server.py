"""Running ASGI apps under uvicorn with the settings the hot path wants.

uvloop and httptools are chosen explicitly (see docs/decisions.md), httptools in a subclass that sends
a response's head and body together (http_protocol.py) and enforces the edge limits (edge_protocol.py);
uvicorn's own access log is off because the gateway writes a structured one.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Generator, Sequence
from typing import Any

import uvicorn
import uvloop

from maas_gateway.edge_limits import EdgeConfig, EdgeLimits
from maas_gateway.edge_protocol import EdgeHttpToolsProtocol
from maas_gateway.logs import LOGGING, OncePerProcess, configure_logging
from maas_gateway.reload_status import ReloadBoard
from maas_gateway.workers import Supervisor, WorkerConfig

__all__ = [
    "LOGGING",
    "BackgroundServer",
    "ListenError",
    "OncePerProcess",
    "ServerSpec",
    "bind",
    "configure_logging",
    "run_servers",
    "run_workers",
]


class ListenError(Exception):
    """An address cannot be listened on; the message says which and why."""


def bind(host: str, port: int, what: str) -> socket.socket:
    """A socket listening on ``host:port`` now, so a taken port stops the start with a clear sentence.

    ``what`` names the listener in the message ("The metrics listener").
    """
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family, kind, protocol, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as exc:
        raise ListenError(f"{what} cannot listen on {shown}: the host is unknown ({exc.strerror}).") from None
    sock = socket.socket(family, kind, protocol)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ListenError(f"{what} cannot listen on {shown}: {exc.strerror}.") from None
    return sock


class ServerSpec:
    """An app and where it listens: a host and port that uvicorn binds, or a socket bound already.

    ``limits`` are the edge limits of its connections (the defaults unless given).
    """

    def __init__(
        self,
        app: Any,
        host: str,
        port: int,
        sock: socket.socket | None = None,
        limits: EdgeLimits | None = None,
    ) -> None:
        self.app, self.host, self.port, self.sock = app, host, port, sock
        self.limits = limits or EdgeLimits()

    def config(self) -> uvicorn.Config:
        return EdgeConfig(self.app, host=self.host, port=self.port, edge=self.limits, **_UVICORN_SETTINGS)

    def sockets(self) -> list[socket.socket] | None:
        return None if self.sock is None else [self.sock]


_UVICORN_SETTINGS: dict[str, Any] = {
    "loop": "uvloop",
    "http": EdgeHttpToolsProtocol,  # httptools, one send() for head and body, edge limits
    "ws": "none",  # the gateway serves no WebSocket; an Upgrade must not bypass the edge limits
    "lifespan": "on",
    "access_log": False,
    "proxy_headers": False,  # the gateway does not use the client address; skip the middleware
    "server_header": False,
    "log_config": None,
    "timeout_keep_alive": 30,
    "timeout_graceful_shutdown": 30,
}


def run_workers(
    factory: str,
    host: str,
    port: int,
    workers: int,
    limits: EdgeLimits,
    reload_board: ReloadBoard | None = None,
) -> None:
    """Serve ``factory`` (an import string) in ``workers`` processes sharing one listening socket.

    This is ``uvicorn.run`` for workers, with a configuration that carries the edge limits and the reload
    board (pickled into each worker), and a supervisor that passes SIGHUP on to the workers (workers.py).
    """
    config = WorkerConfig(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        edge=limits,
        reload_board=reload_board,
        **_UVICORN_SETTINGS,
    )
    with contextlib.suppress(KeyboardInterrupt):
        Supervisor(config, sockets=[config.bind_socket()]).run()


class _SharedSignalServer(uvicorn.Server):
    """A server that leaves signal handling to ``run_servers``, so one signal stops every server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def run_servers(specs: Sequence[ServerSpec], on_reload: Callable[[], None] | None = None) -> None:
    """Serve every app in one event loop until SIGINT or SIGTERM, then shut all down gracefully.

    SIGHUP calls ``on_reload`` (the gateway re-reads its configuration file); `maas serve` blocks SIGHUP
    until the handler exists, so that an early one waits rather than ends the process.
    """
    servers = [_SharedSignalServer(spec.config()) for spec in specs]

    def stop_all() -> None:
        for server in servers:
            server.should_exit = True

    async def serve_all() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_all)
        if on_reload is not None:
            loop.add_signal_handler(signal.SIGHUP, on_reload)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
        await asyncio.gather(
            *(server.serve(spec.sockets()) for server, spec in zip(servers, specs, strict=True))
        )

    uvloop.run(serve_all())


class BackgroundServer:
    """One server in a thread of its own, beside a main thread busy elsewhere (the --workers supervisor).

    Signals stay with the main thread; ``stop`` ends the server gracefully and waits for the thread.
    """

    def __init__(self, spec: ServerSpec) -> None:
        self._spec = spec
        self._server = _SharedSignalServer(spec.config())
        self._thread = threading.Thread(target=self._run, name="metrics-listener", daemon=True)

    def _run(self) -> None:
        uvloop.run(self._server.serve(self._spec.sockets()))

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
