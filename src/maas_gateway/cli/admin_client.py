"""Calling a running gateway's admin API from the command line, with errors as whole sentences."""

from __future__ import annotations

import os
from typing import Annotated, Any

import httpx
import typer

from maas_gateway.admin.guard import ADMIN_KEY_ENV

__all__ = ["AdminKeyOption", "UrlOption", "call"]

UrlOption = Annotated[str, typer.Option(help="The gateway's base URL.")]
AdminKeyOption = Annotated[
    str | None, typer.Option(help=f"The admin key (default: ${ADMIN_KEY_ENV}).", show_default=False)
]


def call(
    method: str,
    url: str,
    path: str,
    admin_key: str | None,
    *,
    json: Any = None,
    params: dict[str, Any] | None = None,
) -> httpx.Response:
    """Send one admin request; exit with a clear message on any failure."""
    key = admin_key or os.environ.get(ADMIN_KEY_ENV)
    if not key:
        typer.secho(f"Give --admin-key or set {ADMIN_KEY_ENV}.", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2)
    clean = {k: v for k, v in (params or {}).items() if v is not None}
    try:
        response = httpx.request(
            method,
            url.rstrip("/") + path,
            json=json,
            params=clean,
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        )
    except httpx.HTTPError as exc:
        typer.secho(f"Cannot reach the gateway at {url}: {exc}.", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1) from None
    if response.status_code >= 400:
        typer.secho(
            f"The gateway answered {response.status_code}: {_message(response)}",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(code=1)
    return response


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
