"""``maas keys``: helpers for API keys in configuration files."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from maas_gateway.auth import hash_key, key_id_for

app = typer.Typer(help="Work with API keys.", no_args_is_help=True)


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
