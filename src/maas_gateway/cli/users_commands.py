"""``maas users``: manage users through a running gateway's admin API."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from maas_gateway.cli.admin_client import AdminKeyOption, UrlOption, call

app = typer.Typer(help="Manage users (through the admin API of a running gateway).", no_args_is_help=True)

URL = "http://127.0.0.1:8000"
UserArgument = Annotated[str, typer.Argument(help="The user name (the id that limits and usage use).")]


@app.command("list")
def list_users(url: UrlOption = URL, admin_key: AdminKeyOption = None) -> None:
    """List users with their tier and state."""
    rows = call("GET", url, "/admin/users", admin_key, params={"page_size": 500}).json()["data"]
    table = Table(title="users")
    for column in ("user", "tier", "source", "tier override", "display_name", "disabled"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["user"],
            row["tier"],
            row["source"],
            row["tier_override"] or "",
            row["display_name"] or "",
            str(row["disabled"]),
        )
    Console().print(table)


@app.command()
def create(
    user: UserArgument,
    tier: Annotated[str, typer.Option(help="The user's tier.")],
    display_name: Annotated[str | None, typer.Option(help="A name to show in reports.")] = None,
    url: UrlOption = URL,
    admin_key: AdminKeyOption = None,
) -> None:
    """Create a user with a tier."""
    call(
        "POST",
        url,
        "/admin/users",
        admin_key,
        json={"user": user, "tier": tier, "display_name": display_name},
    )
    typer.echo(f"Created user {user} on the {tier} tier.")


@app.command("set-tier")
def set_tier(
    user: UserArgument,
    tier: Annotated[str, typer.Argument(help="The new tier.")],
    url: UrlOption = URL,
    admin_key: AdminKeyOption = None,
) -> None:
    """Move a user to another tier, whatever their credentials (every replica follows within a second)."""
    call("PATCH", url, f"/admin/users/{user}", admin_key, json={"tier": tier})
    typer.echo(f"{user} is now on the {tier} tier.")


@app.command("clear-tier")
def clear_tier(user: UserArgument, url: UrlOption = URL, admin_key: AdminKeyOption = None) -> None:
    """Remove a tier override: the user's source (configuration file, identity provider) decides again."""
    answer = call("PATCH", url, f"/admin/users/{user}", admin_key, json={"tier": None}).json()
    typer.echo(f"{user} has no tier override; their tier is now {answer['tier'] or 'none'}.")


@app.command()
def disable(user: UserArgument, url: UrlOption = URL, admin_key: AdminKeyOption = None) -> None:
    """Disable a user: every key of theirs stops working."""
    call("PATCH", url, f"/admin/users/{user}", admin_key, json={"disabled": True})
    typer.echo(f"{user} is disabled.")


@app.command()
def enable(user: UserArgument, url: UrlOption = URL, admin_key: AdminKeyOption = None) -> None:
    """Enable a disabled user again."""
    call("PATCH", url, f"/admin/users/{user}", admin_key, json={"disabled": False})
    typer.echo(f"{user} is enabled.")
