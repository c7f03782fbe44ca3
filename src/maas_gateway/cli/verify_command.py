"""``maas verify``: check any running gateway end to end and print a pass/fail table."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from maas_gateway.deploy.verify import DEMO_KEYS, Check, VerifyOptions, run

__all__ = ["print_checks", "verify"]

_STYLE = {"pass": "[green]PASS[/]", "fail": "[red]FAIL[/]", "skip": "[yellow]SKIP[/]"}


def verify(
    url: Annotated[str, typer.Option(help="The gateway's base URL, such as http://127.0.0.1:8000.")] = (
        "http://127.0.0.1:8000"
    ),
    key: Annotated[list[str] | None, typer.Option(help="An API key to check (repeatable).")] = None,
    free_key: Annotated[str | None, typer.Option(help="A free-tier API key.")] = None,
    premium_key: Annotated[str | None, typer.Option(help="A premium-tier API key.")] = None,
    enterprise_key: Annotated[str | None, typer.Option(help="An enterprise-tier API key.")] = None,
    model: Annotated[str | None, typer.Option(help="The model to call (default: the first listed).")] = None,
    host: Annotated[str | None, typer.Option(help="A Host header, such as simulator.maas.local.")] = None,
    max_requests: Annotated[
        int, typer.Option(min=1, help="Most requests sent while waiting for each 429.")
    ] = 100,
    max_tokens: Annotated[int, typer.Option(min=1, help="max_tokens of the token-limit requests.")] = 256,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds allowed for each request.")] = 60.0,
) -> None:
    """Check a running gateway: health, 401 without a key, 200 per key, 429 on request and token limits.

    With no key given, the demo keys of `maas up` are used. Keys are used up: each check spends a key's
    requests or tokens until the gateway refuses it, so use test users on a production deployment.
    Exits 0 when every check passes, 1 otherwise.
    """
    console = Console(highlight=False, soft_wrap=True)
    tiers = (("free", free_key), ("premium", premium_key), ("enterprise", enterprise_key))
    keys = [(f"the {tier} key", value) for tier, value in tiers if value]
    keys += [(f"key #{number}", value) for number, value in enumerate(key or [], start=1)]
    if not keys:
        keys = list(DEMO_KEYS)
        console.print("No key given: checking with the demo keys of `maas up`.", markup=False)
    options = VerifyOptions(
        url=url,
        keys=tuple(keys),
        model=model,
        host=host,
        max_requests=max_requests,
        max_tokens=max_tokens,
        timeout=timeout,
    )
    checks = run(options)
    print_checks(checks, console, url)
    if any(check.outcome == "fail" for check in checks):
        raise typer.Exit(code=1)


def print_checks(checks: list[Check], console: Console, url: str) -> None:
    """The table, then each failure again on one unwrapped line, then the verdict."""
    table = Table(title=f"maas verify {url}", show_header=True)
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for check in checks:
        table.add_row(check.name, _STYLE[check.outcome], check.detail)
    console.print(table)
    failed = [check for check in checks if check.outcome == "fail"]
    for check in failed:
        console.print(f"FAIL {check.name}: {check.detail}", markup=False)
    if failed:
        console.print(f"{len(failed)} of {len(checks)} checks failed.", markup=False)
    else:
        console.print(f"All {len(checks)} checks passed.", markup=False)
