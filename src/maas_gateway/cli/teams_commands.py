"""``maas teams``: manage teams (cost centres) and their members through a running gateway's admin API."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

import typer
from rich.console import Console
from rich.table import Table

from maas_gateway.cli.admin_client import AdminKeyOption, UrlOption, call

__all__ = ["app"]

app = typer.Typer(help="Manage teams and their members (through the admin API).", no_args_is_help=True)

URL = "http://127.0.0.1:8000"
TeamArgument = Annotated[str, typer.Argument(help="The team's name.")]
UserArgument = Annotated[str, typer.Argument(help="The user name.")]


def _path(team: str, *rest: str) -> str:
    return "/admin/teams/" + "/".join(quote(part, safe="") for part in (team, *rest))


@app.command("list")
def list_teams(url: UrlOption = URL, admin_key: AdminKeyOption = None) -> None:
    """List teams with their members."""
    rows = call("GET", url, "/admin/teams", admin_key).json()["data"]
    table = Table(title="teams")
    for column in ("team", "display_name", "members"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["display_name"] or "", ", ".join(row["members"]))
    Console().print(table)


@app.command()
def create(
    team: TeamArgument,
    display_name: Annotated[str | None, typer.Option(help="A name to show in reports.")] = None,
    url: UrlOption = URL,
    admin_key: AdminKeyOption = None,
) -> None:
    """Create a team."""
    call("POST", url, "/admin/teams", admin_key, json={"name": team, "display_name": display_name})
    typer.echo(f"Created the team '{team}'.")


@app.command()
def delete(team: TeamArgument, url: UrlOption = URL, admin_key: AdminKeyOption = None) -> None:
    """Delete a team and its memberships (usage charged to it stays in the reports)."""
    call("DELETE", url, _path(team), admin_key)
    typer.echo(f"Deleted the team '{team}'.")


@app.command("add-member")
def add_member(
    team: TeamArgument, user: UserArgument, url: UrlOption = URL, admin_key: AdminKeyOption = None
) -> None:
    """Add a user to a team."""
    members = call("POST", url, _path(team, "members"), admin_key, json={"user": user}).json()["members"]
    typer.echo(f"The team '{team}' has {len(members)} member(s): {', '.join(members)}.")


@app.command("remove-member")
def remove_member(
    team: TeamArgument, user: UserArgument, url: UrlOption = URL, admin_key: AdminKeyOption = None
) -> None:
    """Remove a user from a team."""
    members = call("DELETE", url, _path(team, "members", user), admin_key).json()["members"]
    typer.echo(f"The team '{team}' has {len(members)} member(s) left.")
