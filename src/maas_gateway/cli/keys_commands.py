"""``maas keys``: helpers for API keys in configuration files."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from maas_gateway.auth import hash_key, key_id_for
from maas_gateway.cli.admin_client import AdminKeyOption, UrlOption, call

app = typer.Typer(
    help="Work with API keys: hash one for a config file, or manage them through the admin API.",
    no_args_is_help=True,
)
URL = "http://127.0.0.1:8000"
KeyIdArgument = Annotated[str, typer.Argument(help="The key id (key_...), never the secret.")]


@app.command("hash")
def hash_command(
    key: Annotated[str | None, typer.Argument(help="The key; read from standard input when omitted.")] = None,
) -> None:
    """Print the SHA-256 digest to put in `api_keys[].key_sha256`, and the key's public id."""
    secret = key if key is not None else sys.stdin.readline().strip()
    if not secret:
        typer.secho("No key was given.", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2)
    digest = hash_key(secret)
    typer.echo(f"key_sha256: {digest}")
    typer.echo(f"key id:     {key_id_for(digest)}")


@app.command()
def create(
    user: Annotated[str, typer.Option(help="The key's owner.")],
    name: Annotated[str, typer.Option(help="A name to recognise the key by.")],
    expires_in: Annotated[str | None, typer.Option(help="Lifetime such as 30d or 1h.")] = None,
    tier: Annotated[str | None, typer.Option(help="Tier, if the user does not exist yet.")] = None,
    model: Annotated[list[str] | None, typer.Option(help="Allow only this model (repeatable).")] = None,
    team: Annotated[str | None, typer.Option(help="Charge the key's usage to this team of the user.")] = None,
    url: UrlOption = URL,
    admin_key: AdminKeyOption = None,
) -> None:
    """Create a key for a user and print its secret (shown only this once)."""
    body = {"user": user, "name": name, "expiresIn": expires_in, "tier": tier, "models": model}
    if team is not None:
        body["team"] = team
    created = call("POST", url, "/admin/keys", admin_key, json=body).json()
    typer.echo(f"key id: {created['id']}")
    typer.echo(f"secret: {created['key']}")


@app.command("list")
def list_keys(
    user: Annotated[str | None, typer.Option(help="Only this user's keys.")] = None,
    search: Annotated[str | None, typer.Option(help="Match names or ids.")] = None,
    all_keys: Annotated[bool, typer.Option("--all", help="Include revoked and expired keys.")] = False,
    url: UrlOption = URL,
    admin_key: AdminKeyOption = None,
) -> None:
    """List keys (never their secrets)."""
    params = {"user": user, "search": search, "include_inactive": all_keys, "page_size": 500}
    rows = call("GET", url, "/admin/keys", admin_key, params=params).json()["data"]
    table = Table(title="API keys")
    for column in ("id", "user", "name", "active", "expires_at", "last_used_at"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["id"],
            row["user"],
            row["name"],
            str(row["active"]),
            _when(row["expires_at"]),
            _when(row["last_used_at"]),
        )
    Console().print(table)


@app.command()
def revoke(key_id: KeyIdArgument, url: UrlOption = URL, admin_key: AdminKeyOption = None) -> None:
    """Revoke a key at once."""
    call("DELETE", url, f"/admin/keys/{key_id}", admin_key)
    typer.echo(f"Revoked {key_id}.")


@app.command()
def rotate(
    key_id: KeyIdArgument,
    grace_period: Annotated[str, typer.Option(help="How long the old key keeps working.")] = "1h",
    url: UrlOption = URL,
    admin_key: AdminKeyOption = None,
) -> None:
    """Replace a key; print the new secret. The old key works for the grace period only."""
    rotated = call("POST", url, f"/admin/keys/{key_id}/rotate", admin_key, json={"gracePeriod": grace_period})
    new = rotated.json()["new"]
    typer.echo(f"key id: {new['id']}")
    typer.echo(f"secret: {new['key']}")
    typer.echo(f"{key_id} keeps working for {grace_period}.")


def _when(value: float | None) -> str:
    return "" if value is None else datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
