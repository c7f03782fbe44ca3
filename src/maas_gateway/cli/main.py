"""The ``maas`` command: start the gateway, the simulator, or both; inspect configuration."""

from __future__ import annotations

import functools
import os
import secrets
import signal
from pathlib import Path
from typing import Annotated

import typer

from maas_gateway import __version__
from maas_gateway.admin.guard import ADMIN_KEY_ENV, AdminGuard
from maas_gateway.cli import (
    alerts_commands,
    config_commands,
    deploy_commands,
    keys_commands,
    reload_command,
    sim_command,
    teams_commands,
    token_command,
    usage_command,
    users_commands,
    verify_command,
)
from maas_gateway.cli.banner import print_banner
from maas_gateway.config import ConfigError, GatewayConfig, demo_config, load_config
from maas_gateway.config.balancing_settings import BackendConfig
from maas_gateway.portal.provisioning import DemoAccounts
from maas_gateway.reload_status import ReloadBoard, board_beside, reload_and_report

__all__ = ["app", "main"]

app = typer.Typer(
    name="maas",
    help="maas-gateway: an OpenAI-compatible gateway with API keys, tiers and token limits.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(config_commands.app, name="config")
app.add_typer(keys_commands.app, name="keys")
app.add_typer(users_commands.app, name="users")
app.add_typer(usage_command.usage_app, name="usage")
app.add_typer(teams_commands.app, name="teams")
app.add_typer(deploy_commands.app, name="deploy")
app.command("verify")(verify_command.verify)
app.command("token")(token_command.token)
app.command("reload")(reload_command.reload)
app.command("sim")(sim_command.sim)
app.add_typer(alerts_commands.app, name="alerts")

HostOption = Annotated[str | None, typer.Option(help="Interface to listen on (default from config).")]
PortOption = Annotated[int | None, typer.Option(help="Port to listen on (default from config).")]
# The name of the variable holding the portal admin's password in `maas up`, not a password.
ADMIN_PASSWORD_ENV = "MAAS_ADMIN_PASSWORD"  # noqa: S105
LogLevel = Annotated[str, typer.Option(help="Log level: debug, info, warning or error.")]


def _fail(message: str) -> typer.Exit:
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


def _with_server(config: GatewayConfig, host: str | None, port: int | None) -> GatewayConfig:
    changes = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    if not changes:
        return config
    return config.model_copy(update={"server": config.server.model_copy(update=changes)})


def _check_admin_key(config: GatewayConfig) -> None:
    """Refuse a too short MAAS_ADMIN_KEY before anything starts, with the message alone (exit 2)."""
    try:
        AdminGuard.from_config(config.admin)
    except ConfigError as exc:
        raise _fail(str(exc)) from None


@app.command()
def serve(
    config: Annotated[Path, typer.Option("--config", "-c", help="The YAML configuration file.")],
    host: HostOption = None,
    port: PortOption = None,
    log_level: LogLevel = "info",
    pid_file: Annotated[
        Path | None, typer.Option(help="Write the process id here, for `maas reload`.")
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes on one port; share limits through Redis.")
    ] = 1,
) -> None:
    """Run the gateway from a configuration file (see `maas config example`).

    SIGHUP (or `maas reload`) re-reads the file in every process and applies new keys, models, tiers and
    limits without dropping requests or resetting counters. With --pid-file, the processes report the
    outcome in the directory `<pid file>.reload/`, where `maas reload` waits for it.
    """
    try:
        loaded = _with_server(load_config(config), host, port)
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    _check_admin_key(loaded)
    # A SIGHUP before the gateway can reload waits (run_servers and the supervisor unblock it) rather
    # than ending the process, which is what SIGHUP does by default.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    board = None
    if pid_file is not None:
        board = ReloadBoard(board_beside(pid_file))
        try:
            board.open()  # before the pid file: whoever finds the pid can find the board
        except OSError as exc:
            raise _fail(f"Cannot create the reload directory {board.directory}: {exc.strerror}.") from None
        pid_file.write_text(f"{os.getpid()}\n", "utf-8")
    try:
        if workers > 1:
            _run_workers(loaded, config, log_level, workers, board)
        else:
            _run_gateway(loaded, log_level, simulator_port=None, config_path=config, reload_board=board)
    finally:
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)
        if board is not None:
            board.close()


def _run_workers(
    config: GatewayConfig, path: Path, log_level: str, workers: int, board: ReloadBoard | None
) -> None:
    from maas_gateway.application.factory import CONFIG_ENV, LOG_LEVEL_ENV
    from maas_gateway.application.services import upstream_transport
    from maas_gateway.edge_limits import EdgeLimits
    from maas_gateway.metrics.listener import listener_spec
    from maas_gateway.metrics.multiprocess import render_directory, workers_directory
    from maas_gateway.server import BackgroundServer, ListenError, configure_logging, run_workers

    configure_logging(log_level)
    try:
        upstream_transport(config.server)  # a CA bundle that cannot be used stops here, not in each worker
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if config.limits.enabled and config.limits.storage == "memory":
        typer.secho(
            f"Warning: limits.storage is 'memory', so each of the {workers} workers counts on its own; "
            "set it to a redis:// URL to share limits.",
            err=True,
            fg=typer.colors.YELLOW,
        )
    os.environ[CONFIG_ENV] = str(path.resolve())
    os.environ[LOG_LEVEL_ENV] = log_level
    factory = "maas_gateway.application.factory:app_from_environment"
    limits = EdgeLimits.of(config.server)
    if not config.metrics.enabled:
        run_workers(factory, config.server.host, config.server.port, workers, limits, board)
        return
    # The workers write their metrics to files in one directory; this supervisor alone listens for
    # scrapes and merges them, so one scrape describes the whole pod.
    with workers_directory() as directory:
        try:
            listener = BackgroundServer(listener_spec(config.metrics, lambda: render_directory(directory)))
        except ListenError as exc:
            raise _fail(str(exc)) from None
        listener.start()
        try:
            run_workers(factory, config.server.host, config.server.port, workers, limits, board)
        finally:
            listener.stop()


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Interface for the gateway.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the gateway.")] = 8000,
    sim_port: Annotated[int, typer.Option(help="Port for the built-in simulator.")] = 8001,
    metrics_port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port for Prometheus metrics, on 127.0.0.1.")
    ] = 9464,
    data_dir: Annotated[Path, typer.Option(help="Where the usage ledger (SQLite) and spool live.")] = Path(
        "maas-data"
    ),
    log_level: LogLevel = "info",
) -> None:
    """Start everything on embedded defaults: the gateway, the simulator, demo tiers and keys."""
    config = _with_server(demo_config(), host, port)
    backend = BackendConfig.model_validate({"url": f"http://127.0.0.1:{sim_port}"})
    models = [m.model_copy(update={"backends": [backend]}) for m in config.models]
    data_dir = data_dir.resolve()
    database = config.database.model_copy(
        update={"url": f"sqlite+aiosqlite:///{data_dir / 'ledger.db'}", "spool_dir": str(data_dir / "spool")}
    )
    metrics = config.metrics.model_copy(update={"listen": f"127.0.0.1:{metrics_port}"})
    config = config.model_copy(update={"models": models, "database": database, "metrics": metrics})
    admin_key = os.environ.get(ADMIN_KEY_ENV)
    generated = None
    if not admin_key:
        generated = secrets.token_urlsafe(24)
        os.environ[ADMIN_KEY_ENV] = generated
    _check_admin_key(config)
    accounts = _demo_accounts(config)
    _run_gateway(
        config,
        log_level,
        simulator_port=sim_port,
        data_dir=str(data_dir),
        admin_key=generated,
        accounts=accounts,
    )


def _demo_accounts(config: GatewayConfig) -> DemoAccounts | None:
    """The portal's demo developer and admin account, created unless they exist (see provisioning.py)."""
    import asyncio

    from maas_gateway.portal.provisioning import ensure_demo_accounts

    url = config.database.url
    if url is None or not config.portal.enabled:
        return None
    password = os.environ.get(ADMIN_PASSWORD_ENV) or None
    try:
        return asyncio.run(ensure_demo_accounts(url, password, tier="free"))
    except ValueError as exc:  # MAAS_ADMIN_PASSWORD too short
        raise _fail(f"{ADMIN_PASSWORD_ENV}: {exc}") from None


def _run_gateway(
    config: GatewayConfig,
    log_level: str,
    simulator_port: int | None,
    config_path: Path | None = None,
    data_dir: str | None = None,
    admin_key: str | None = None,
    reload_board: ReloadBoard | None = None,
    accounts: DemoAccounts | None = None,
) -> None:
    from maas_gateway.application import Application
    from maas_gateway.edge_limits import EdgeLimits
    from maas_gateway.metrics.listener import listener_spec
    from maas_gateway.server import ListenError, ServerSpec, bind, configure_logging, run_servers
    from maas_gateway.simulator import SimulatorSettings, create_simulator_app

    configure_logging(log_level)
    host, port = config.server.host, config.server.port
    # Every port is taken before anything starts or prints, so a busy one stops the start with one line.
    try:
        gateway_socket = bind(host, port, "The gateway")
        simulator_socket = None
        if simulator_port is not None:
            simulator_socket = bind("127.0.0.1", simulator_port, "The built-in simulator")
    except ListenError as exc:
        raise _fail(f"{exc} Stop what uses the port, or choose another (--port, --sim-port).") from None
    try:
        gateway = Application(config, config_path)
    except ValueError as exc:  # a CA bundle or client certificate that cannot be used
        raise _fail(str(exc)) from None
    limits = EdgeLimits.of(config.server)
    specs = [ServerSpec(gateway.asgi, host, port, sock=gateway_socket, limits=limits)]
    metrics = gateway.services.metrics
    if metrics is not None:
        try:
            specs.append(listener_spec(config.metrics, metrics.render))
        except ListenError as exc:
            raise _fail(str(exc)) from None
    if simulator_port is not None:
        simulator = create_simulator_app(SimulatorSettings())
        specs.append(ServerSpec(simulator, "127.0.0.1", simulator_port, sock=simulator_socket))
        print_banner(config, simulator_port, data_dir=data_dir, admin_key=admin_key, accounts=accounts)
    reload = functools.partial(reload_and_report, gateway.reload_file, reload_board, announce=True)
    run_servers(specs, on_reload=reload)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    app()
