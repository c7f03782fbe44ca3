"""``maas usage``: who used what, from a running gateway's admin API, as a table or CSV."""

from __future__ import annotations

import os
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from maas_gateway.admin.guard import ADMIN_KEY_ENV

__all__ = ["usage"]


def usage(
    url: Annotated[str, typer.Option(help="The gateway's base URL.")] = "http://127.0.0.1:8000",
    admin_key: Annotated[
        str | None, typer.Option(help=f"The admin key (default: ${ADMIN_KEY_ENV}).", show_default=False)
    ] = None,
    since: Annotated[str | None, typer.Option(help="Start: ISO 8601 date/time or Unix seconds.")] = None,
    until: Annotated[str | None, typer.Option(help="End: ISO 8601 date/time or Unix seconds.")] = None,
    group_by: Annotated[str, typer.Option(help="user, tier, model, endpoint, day, hour.")] = "user,model",
    user: Annotated[str | None, typer.Option(help="Only this user.")] = None,
    csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
) -> None:
    """Show usage per user and model (or other groups) for a period, from the usage ledger."""
    key = admin_key or os.environ.get(ADMIN_KEY_ENV)
    if not key:
        typer.secho(f"Give --admin-key or set {ADMIN_KEY_ENV}.", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2)
    params = {
        k: v for k, v in {"since": since, "until": until, "group_by": group_by, "user": user}.items() if v
    }
    params["format"] = "csv" if csv else "json"
    try:
        response = httpx.get(
            url.rstrip("/") + "/admin/usage",
            params=params,
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
    except httpx.HTTPError as exc:
        typer.secho(f"Cannot reach the gateway at {url}: {exc}.", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from None
    if response.status_code != 200:
        message = _message(response)
        typer.secho(f"The gateway answered {response.status_code}: {message}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1)
    if csv:
        typer.echo(response.text, nl=False)
        return
    _print_table(response.json()["data"], group_by.split(","))


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def _print_table(rows: list[dict[str, Any]], groups: list[str]) -> None:
    table = Table(title="usage")
    numbers = ["requests", "rate_limited", "prompt_tokens", "completion_tokens", "total_tokens", "cost"]
    for column in [*groups, *numbers]:
        table.add_column(column, justify="right" if column in numbers else "left")
    for row in rows:
        table.add_row(*(str(row.get(column.strip(), "")) for column in [*groups, *numbers]))
    Console().print(table)
