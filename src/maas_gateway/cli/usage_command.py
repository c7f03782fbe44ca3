"""``maas usage``: who used what, from a running gateway's admin API, as a table or CSV; and ``maas usage
reconcile``: the ledger against the backends' own token counters."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from maas_gateway.cli.admin_client import AdminKeyOption, UrlOption, call

__all__ = ["DRIFT_EXIT_CODE", "usage", "usage_app"]

DRIFT_EXIT_CODE = 3  # a reconciliation found a drift over 1 % (1 and 2 are the admin client's errors)

usage_app = typer.Typer(help="Usage from the ledger, and its reconciliation with the backends.")


@usage_app.callback(invoke_without_command=True)
def usage(
    context: typer.Context,
    url: UrlOption = "http://127.0.0.1:8000",
    admin_key: AdminKeyOption = None,
    since: Annotated[str | None, typer.Option(help="Start: ISO 8601 date/time or Unix seconds.")] = None,
    until: Annotated[str | None, typer.Option(help="End: ISO 8601 date/time or Unix seconds.")] = None,
    group_by: Annotated[
        str, typer.Option(help="user, team, tier, model, endpoint, day, hour.")
    ] = "user,model",
    user: Annotated[str | None, typer.Option(help="Only this user.")] = None,
    month: Annotated[
        str | None, typer.Option(help="A calendar month in UTC (2026-11), instead of --since/--until.")
    ] = None,
    csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
    focus: Annotated[
        bool, typer.Option("--focus", help="Print a FOCUS-style chargeback CSV (BilledCost, ...).")
    ] = False,
) -> None:
    """Show usage per user and model (or other groups: `--group-by team,model` for chargeback) for a
    period or a month, from the usage ledger."""
    if context.invoked_subcommand is not None:
        return
    params = {
        "since": since,
        "until": until,
        "month": month,
        "group_by": group_by,
        "user": user,
        "format": "focus" if focus else "csv" if csv else "json",
    }
    response = call("GET", url, "/admin/usage", admin_key, params=params)
    if csv or focus:
        typer.echo(response.text, nl=False)
        return
    _print_table(response.json()["data"], [g.strip() for g in group_by.split(",")])


def _print_table(rows: list[dict[str, Any]], groups: list[str]) -> None:
    table = Table(title="usage")
    numbers = [
        "requests",
        "rate_limited",
        "failed",
        "broken",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "cost",
    ]
    for column in [*groups, *numbers]:
        table.add_column(column, justify="right" if column in numbers else "left")
    for row in rows:
        table.add_row(*(str(row.get(column, "")) for column in [*groups, *numbers]))
    Console().print(table)


@usage_app.command()
def reconcile(
    url: UrlOption = "http://127.0.0.1:8000",
    admin_key: AdminKeyOption = None,
    since: Annotated[
        str | None, typer.Option(help="Start: ISO 8601 or Unix seconds (default a day ago).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="End: ISO 8601 or Unix seconds (default now).")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON answer instead of a table.")
    ] = False,
) -> None:
    """Compare the ledger's tokens per backend and model with the backend's own counters; exit with
    code 3 when a drift is over 1 % (or the ledger has traffic for a backend whose counters were not read)."""
    response = call("GET", url, "/admin/usage/reconcile", admin_key, params={"since": since, "until": until})
    answer = response.json()
    if as_json:
        typer.echo(response.text)
    else:
        _print_reconciliation(answer["data"])
    if answer["warnings"]:
        typer.secho(
            f"{answer['warnings']} backend and model pairs drift over 1 % or could not be compared.",
            err=True,
            fg=typer.colors.YELLOW,
        )
        raise typer.Exit(code=DRIFT_EXIT_CODE)


def _print_reconciliation(rows: list[dict[str, Any]]) -> None:
    table = Table(title="reconciliation")
    for column in ("backend", "model", "ledger tokens", "backend tokens", "resets", "drift", "warning"):
        table.add_column(column, justify="left" if column in ("backend", "model") else "right")
    for row in rows:
        ledger = row["ledger_prompt_tokens"] + row["ledger_completion_tokens"]
        counted = row["backend_prompt_tokens"]
        backend = "unread" if counted is None else f"{counted + row['backend_generation_tokens']:.0f}"
        drift = "-" if row["drift_ratio"] is None else f"{row['drift_ratio'] * 100:.2f} %"
        warning = "yes" if row["warning"] else ""
        # Text, not markup: a backend names its own models, and "[...]" in one must not style the table.
        names = (Text(str(row["backend"])), Text(str(row["model"])))
        table.add_row(*names, str(ledger), backend, str(row["resets"]), drift, warning)
    Console().print(table)
