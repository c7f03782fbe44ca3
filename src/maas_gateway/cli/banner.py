"""What `maas up` prints: what is running, and examples ready to paste.

The examples are printed as plain text, never inside a box or wrapped, so that a copy from any terminal
width pastes as a working command.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from maas_gateway.config import GatewayConfig
from maas_gateway.portal.provisioning import DEMO_DEVELOPER, DEMO_PASSWORD, DemoAccounts

__all__ = ["print_banner"]


def print_banner(
    config: GatewayConfig,
    simulator_port: int,
    *,
    data_dir: str | None = None,
    admin_key: str | None = None,
    accounts: DemoAccounts | None = None,
) -> None:
    wildcard = config.server.host in ("0.0.0.0", "::")  # a wildcard bind is reached on loopback
    host = "127.0.0.1" if wildcard else config.server.host
    url = f"http://{host}:{config.server.port}"
    console = Console(highlight=False, soft_wrap=True)
    table = Table(title="maas-gateway is starting", show_header=True)
    table.add_column("what")
    table.add_column("where")
    table.add_row("gateway (OpenAI API)", f"{url}/v1")
    if config.portal.enabled:
        table.add_row("developer and admin portal", f"{url}/portal/")
    table.add_row("simulator backend", f"http://127.0.0.1:{simulator_port}")
    table.add_row("models", ", ".join(m.name for m in config.models))
    table.add_row("health / readiness", f"{url}/health  {url}/ready")
    if config.metrics.enabled:
        table.add_row("metrics (own listener)", f"{_metrics_url(config)}/metrics")
    if data_dir is not None:
        table.add_row("usage ledger and spool", data_dir)
    console.print(table)
    keys = Table(title="demo API keys", show_header=True)
    keys.add_column("user")
    keys.add_column("tier")
    keys.add_column("key")
    for key in config.api_keys:
        secret = key.key.get_secret_value() if key.key is not None else "(hash only)"
        keys.add_row(key.user, key.tier, secret)
    console.print(keys)
    if admin_key is not None:
        console.print(f"admin API key (this run only): {admin_key}", markup=False)
    if accounts is not None:
        console.print(f"portal demo developer: {DEMO_DEVELOPER} / {DEMO_PASSWORD}", markup=False)
        if accounts.admin_password is not None:
            console.print(
                f"portal admin account: admin / {accounts.admin_password} (shown once; keep it)", markup=False
            )
        elif accounts.admin_created:
            console.print("portal admin account: admin (password from MAAS_ADMIN_PASSWORD)", markup=False)
        else:
            console.print("portal admin account: admin (existing account, password unchanged)", markup=False)
    curl = (
        f"curl -s {url}/v1/chat/completions \\\n"
        "  -H 'Authorization: APIKEY freeuser1_key' -H 'Content-Type: application/json' \\\n"
        '  -d \'{"model": "simulator-model", "messages": [{"role": "user", "content": "Hello"}]}\''
    )
    sdk = (
        "from openai import OpenAI\n"
        f'client = OpenAI(base_url="{url}/v1", api_key="premiumuser1_key")\n'
        "reply = client.chat.completions.create(\n"
        '    model="simulator-model", messages=[{"role": "user", "content": "Hello"}])\n'
        "print(reply.choices[0].message.content, reply.usage)"
    )
    console.rule("try it with curl")
    console.print(curl, markup=False)
    console.rule("or with the OpenAI SDK (pip install openai)")
    console.print(sdk, markup=False)
    console.rule()
    console.print("Press Ctrl+C to stop.")


def _metrics_url(config: GatewayConfig) -> str:
    host, port = config.metrics.address
    if host in ("0.0.0.0", "::"):  # a wildcard bind is reached on loopback
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
