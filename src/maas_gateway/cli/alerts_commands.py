"""``maas alerts test``: send a signed sample alert to the configured webhooks and say how each answered."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

import typer

from maas_gateway.alerts.payload import alert_payload, sample_event
from maas_gateway.alerts.sender import WebhookTarget
from maas_gateway.alerts.signing import signed_headers
from maas_gateway.alerts.webhook_client import WebhookClient
from maas_gateway.application.alerts_wiring import webhook_targets
from maas_gateway.config import ConfigError, load_config

__all__ = ["app", "send_test"]

app = typer.Typer(help="Budget alerts: check that the webhooks receive them.", no_args_is_help=True)


@app.command("test")
def send_test(
    config: Annotated[Path, typer.Option("--config", "-c", help="The YAML configuration file.")],
    webhook: Annotated[
        str | None, typer.Option(help="Only this webhook (its `name`); default: every one.")
    ] = None,
) -> None:
    """Send a signed sample alert (marked `"test": true`) to each configured webhook and print its answer.

    The secrets are read from the environment variables the file names, as the gateway does. Exits 0 when
    every webhook accepted the sample (2xx), 1 when one did not, 2 when the configuration cannot be used.
    """
    try:
        settings = load_config(config).alerts
        targets = webhook_targets(settings)
    except (ConfigError, ValueError) as exc:
        typer.secho(str(exc), err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2) from None
    if webhook is not None:
        if webhook not in targets:
            names = ", ".join(sorted(targets)) or "none"
            typer.secho(f"No webhook is named '{webhook}' (configured: {names}).", err=True, fg="red")
            raise typer.Exit(code=2)
        targets = {webhook: targets[webhook]}
    if not targets:
        typer.secho(f"{config} configures no webhook under `alerts.webhooks`.", err=True, fg="red")
        raise typer.Exit(code=2)
    results = asyncio.run(_send_samples(list(targets.values())))
    failed = False
    for name, outcome, accepted in results:
        failed = failed or not accepted
        typer.secho(f"{name}: {outcome}", fg=typer.colors.GREEN if accepted else typer.colors.RED)
    raise typer.Exit(code=1 if failed else 0)


async def _send_samples(targets: list[WebhookTarget]) -> list[tuple[str, str, bool]]:
    client = WebhookClient()
    results = []
    try:
        for target in targets:
            now = time.time()
            event = sample_event(target.name, now)
            body = alert_payload(event, test=True)
            headers = signed_headers(target.secret, body, now, event.alert_id)
            try:
                status = await client.post(target.url, body, headers, target.timeout)
            except Exception as exc:  # noqa: BLE001  # whatever the failure, it is the answer to print
                results.append((target.name, f"could not be reached ({type(exc).__name__}).", False))
                continue
            accepted = 200 <= status < 300
            verdict = "accepted" if accepted else "did not accept"
            results.append(
                (target.name, f"answered {status}: it {verdict} the sample alert {event.alert_id}.", accepted)
            )
    finally:
        await client.aclose()
    return results
