"""``maas reload``: make a running gateway re-read its configuration file, and wait until it serves it.

With ``--pid-file`` the command asks for a new generation on the gateway's reload board, sends SIGHUP and
waits until every serving process reported it (reload_status.py). With ``--pid`` alone it cannot find the
board, so it only sends the signal.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from maas_gateway.reload_status import ReloadBoard, ReloadFailed, board_beside, wait_for_reports

__all__ = ["reload"]


def reload(
    pid_file: Annotated[Path | None, typer.Option(help="The file `maas serve --pid-file` wrote.")] = None,
    pid: Annotated[
        int | None, typer.Option(help="The gateway's process id (then the command cannot wait).")
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=0, help="Seconds to wait for every gateway process to reload.")
    ] = 30.0,
) -> None:
    """Make a running gateway re-read its configuration file; return once every process serves it.

    Fails, saying why, if the gateway refused the file (it keeps serving the configuration it had) or did
    not answer within --timeout. With --pid instead of --pid-file it only sends SIGHUP.
    """
    if (pid_file is None) == (pid is None):
        raise _fail("Give either --pid-file or --pid.")
    board = None
    if pid_file is not None:
        try:
            pid = int(pid_file.read_text("utf-8").strip())
        except (OSError, ValueError):
            raise _fail(f"{pid_file} does not hold the process id of a running gateway.") from None
        if board_beside(pid_file).is_dir():
            board = ReloadBoard(board_beside(pid_file))
    assert pid is not None
    generation = 0
    if board is not None:
        try:
            generation = board.request()
        except OSError as exc:
            raise _fail(f"Cannot ask for a reload in {board.directory}: {exc.strerror}.") from None
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise _fail(f"No process {pid} is running.") from None
    except PermissionError:
        raise _fail(f"Process {pid} belongs to another user; run `maas reload` as that user.") from None
    if board is None:
        typer.echo(
            f"Asked gateway process {pid} to reload its configuration. Not waiting: only with --pid-file "
            "(and a gateway started with --pid-file) can `maas reload` see the outcome."
        )
        return
    try:
        outcomes = wait_for_reports(board, generation, pid, timeout)
    except ReloadFailed as exc:
        raise _fail(str(exc), exit_code=1) from None
    refusals = [outcome.refusal for outcome in outcomes.values() if outcome.refusal is not None]
    if refusals:
        raise _fail(
            f"The gateway refused the configuration file and keeps serving the previous one: "
            f"{_one_line(refusals[0])}",
            exit_code=1,
        )
    typer.echo(f"Gateway process {pid} serves the new configuration ({len(outcomes)} process(es) reloaded).")
    restart = sorted({name for outcome in outcomes.values() for name in outcome.needs_restart})
    if restart:
        note = f"Changes to {', '.join(restart)} take effect only after a restart."
        typer.secho(note, err=True, fg=typer.colors.YELLOW)


def _one_line(message: str) -> str:
    """A configuration error's lines (a heading, then one line per problem) as one line."""
    lines = [line.strip().removeprefix("- ") for line in message.splitlines() if line.strip()]
    return " ".join([*lines[:1], "; ".join(lines[1:])]).strip()


def _fail(message: str, exit_code: int = 2) -> typer.Exit:
    """Exit 2 for what the command was given, 1 when the gateway did not reload."""
    typer.secho(message, err=True, fg=typer.colors.RED)
    return typer.Exit(code=exit_code)
