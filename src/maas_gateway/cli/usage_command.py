"""``maas usage``: who used what, from a running gateway's admin API, as a table or CSV."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from maas_gateway.cli.admin_client import AdminKeyOption, UrlOption, call

__all__ = ["usage"]


def usage(
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
