"""``maas users``: manage users through a running gateway's admin API."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from maas_gateway.cli.admin_client import AdminKeyOption, UrlOption, call
from maas_gateway.config import ConfigError, load_config

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
    tier: Annotated[str | None, typer.Option(help="The user's tier (a new portal account: free).")] = None,
    display_name: Annotated[str | None, typer.Option(help="A name to show in reports.")] = None,
    url: UrlOption = URL,
    admin_key: AdminKeyOption = None,
    password: Annotated[
        bool,
        typer.Option(
            "--password",
            help="Give the user a portal account: asks for the password twice (never on the command line, "
            "where other users of the machine could read it).",
        ),
    ] = False,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Give the user a portal account; read the password from stdin."
        ),
    ] = False,
    admin: Annotated[
        bool, typer.Option("--admin", help="The portal account administers the portal.")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(help="With --password: the configuration whose database.url holds the accounts."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="With --password: the database URL (default: --config's, else maas up's maas-data)."
        ),
    ] = None,
) -> None:
    """Create a user with a tier (admin API); with --password, a portal account (in the database)."""
    if password or password_stdin:
        _create_account(user, tier, admin, password_stdin, config, database_url)
        return
    if tier is None:
        raise typer.BadParameter("Give the user's tier with --tier.", param_hint="--tier")
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


def _create_account(
    user: str,
    tier: str | None,
    is_admin: bool,
    from_stdin: bool,
    config_path: Path | None,
    database_url: str | None,
) -> None:
    from maas_gateway.portal.passwords import password_problem
    from maas_gateway.portal.provisioning import create_account

    url = database_url
    if url is None and config_path is not None:
        try:
            url = load_config(config_path).database.url
        except ConfigError as exc:
            raise typer.BadParameter(str(exc), param_hint="--config") from None
        if url is None:
            raise typer.BadParameter(
                f"{config_path} sets no database.url; portal accounts without one live only in a running "
                "gateway's memory.",
                param_hint="--config",
            )
    if url is None:
        url = f"sqlite+aiosqlite:///{Path('maas-data').resolve() / 'ledger.db'}"
    if from_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    else:
        secret = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    problem = password_problem(secret)
    if problem is not None:
        raise typer.BadParameter(problem, param_hint="password")
    try:
        created = asyncio.run(create_account(url, user, secret, tier=tier or "free", is_admin=is_admin))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if not created:
        typer.echo(f"{user} already has a portal account; it was left as it is.", err=True)
        raise typer.Exit(1)
    role = "an administrator's" if is_admin else "a"
    typer.echo(f"Created {role} portal account for {user}.")
