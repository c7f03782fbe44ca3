"""``maas config``: print the documented example, or check a file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from maas_gateway.config import ConfigError, demo_config_text, load_config
from maas_gateway.config.unpriced import unpriced_warning

app = typer.Typer(help="Print or check configuration files.", no_args_is_help=True)


@app.command()
def example() -> None:
    """Print a documented example configuration (the demo that `maas up` runs)."""
    typer.echo(demo_config_text(), nl=False)


@app.command()
def validate(path: Annotated[Path, typer.Argument(help="The YAML file to check.")]) -> None:
    """Check a configuration file and say what is wrong with it, field by field."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2) from None
    typer.echo(
        f"{path} is valid: {len(config.models)} models, {len(config.tiers)} tiers, "
        f"{len(config.api_keys)} API keys."
    )
    if (warning := unpriced_warning(config)) is not None:
        typer.secho(f"Warning: {warning}", err=True, fg=typer.colors.YELLOW)
