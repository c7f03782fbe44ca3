"""The portal's Models page: each of my models with its addresses, my limits, its price and examples that
work when pasted (run here with curl, Python and Node), and the gateway's address as the browser sees it,
believing forwarded headers only from trusted proxies."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from maas_gateway.http.forwarded import TrustedProxies
from maas_gateway.portal.origin import external_origin
from tests.support.developer_portal import MARKUP, create_key, developer_config, secret_on
from tests.support.gateways import start_gateway
from tests.support.portal import ADMIN_KEY, create_account, sign_in
from tests.support.processes import GatewayProcess, ServerProcess

LOOPBACK = TrustedProxies(["127.0.0.1/32"])


@pytest.fixture(scope="module")
def portal(simulator: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    directory = tmp_path_factory.mktemp("portal-models")
    config = developer_config(simulator.url, directory)
    create_account(config, "dev1", "openshift")
    server = start_gateway(config, directory, env={"MAAS_ADMIN_KEY": ADMIN_KEY})
    yield server
    server.stop()


def scope(peer: str, *headers: tuple[str, str], scheme: str = "http") -> dict[str, object]:
    return {
        "type": "http",
        "scheme": scheme,
        "client": (peer, 40000),
        "server": ("127.0.0.1", 8000),
        "headers": [(name.encode(), value.encode()) for name, value in headers],
    }


def test_the_origin_believes_forwarded_headers_only_from_trusted_proxies() -> None:
    """Host from anyone; X-Forwarded-Host and -Proto only from a trusted proxy (its nearest value); a Host
    that is not a host name is replaced by the listening address."""
    forwarded = (("host", "internal:8000"), ("x-forwarded-host", "evil.example, api.example.com"))
    https = ("x-forwarded-proto", "https")
    assert external_origin(scope("127.0.0.1", ("host", "gw.local:8000")), LOOPBACK) == "http://gw.local:8000"
    assert external_origin(scope("203.0.113.9", *forwarded, https), LOOPBACK) == "http://internal:8000"
    assert external_origin(scope("127.0.0.1", *forwarded, https), LOOPBACK) == "https://api.example.com"
    assert external_origin(scope("127.0.0.1", ("host", "[::1]:8000")), LOOPBACK) == "http://[::1]:8000"
    assert external_origin(scope("127.0.0.1", ("host", MARKUP)), LOOPBACK) == "http://127.0.0.1:8000"
    assert external_origin(scope("127.0.0.1"), LOOPBACK) == "http://127.0.0.1:8000"
    assert external_origin(scope("127.0.0.1", scheme="https"), LOOPBACK) == "https://127.0.0.1:8000"


def test_the_page_lists_my_models_with_addresses_limits_and_price(portal: GatewayProcess) -> None:
    """dev1 (free) sees simulator-model and simulator-embed, not the premium-only model; each with its
    addresses by model, host and path prefix, the tier's limits left, and the configured price."""
    port = portal.url.rsplit(":", 1)[1]
    with sign_in(portal.url, "dev1", "openshift") as client:
        page = client.get("/portal/models")
        assert page.status_code == 200
        text = page.text
        assert "<code>simulator-model</code></h2>" in text
        assert "<code>simulator-embed</code></h2>" in text
        assert "premium-model" not in text
        assert f"{portal.url}/v1/chat/completions" in text
        assert f"http://simulator.maas.local:{port}/v1/chat/completions" in text
        assert f"{portal.url}/simulator/v1/chat/completions" in text
        assert "1000 requests per 2m" in text
        assert "USD 500 per million input tokens, USD 1,500 per million output tokens" in text
        assert "No price is set for this model." in text


def test_a_forwarded_host_from_the_trusted_proxy_fills_the_examples(portal: GatewayProcess) -> None:
    """Behind the trusted proxy (loopback here), the examples use the host and scheme it forwards."""
    with sign_in(portal.url, "dev1", "openshift") as client:
        headers = {"X-Forwarded-Host": "api.example.com", "X-Forwarded-Proto": "https"}
        text = client.get("/portal/models", headers=headers).text
        assert 'base_url="https://api.example.com/v1"' in html.unescape(text)
        assert "https://simulator.maas.local/v1/chat/completions" in text


def test_a_host_header_with_markup_is_not_shown(portal: GatewayProcess) -> None:
    """A Host with markup is not a host name: the page shows the listening address instead."""
    with sign_in(portal.url, "dev1", "openshift") as client:
        text = client.get("/portal/models", headers={"Host": 'x"><script>alert(1)</script>'}).text
        assert "<script>alert" not in text
        assert "alert(1)" not in text
        assert f"{portal.url}/v1" in text


def _examples(text: str) -> dict[str, str]:
    found = re.findall(r'<code id="example-1-(\w+)">(.*?)</code>', text, re.DOTALL)
    return {slug: html.unescape(code) for slug, code in found}


def test_the_examples_work_when_pasted(portal: GatewayProcess, tmp_path: Path) -> None:
    """The first model's curl, Python and JavaScript examples, run as shown with a new key in MAAS_API_KEY,
    each get an answer from the simulator."""
    with sign_in(portal.url, "dev1", "openshift") as client:
        secret = secret_on(create_key(client, "examples").text)
        examples = _examples(client.get("/portal/models").text)
    assert set(examples) == {"curl", "python", "javascript"}
    env = {**os.environ, "MAAS_API_KEY": secret}
    script = tmp_path / "example.mjs"
    script.write_text(examples["javascript"])
    commands = [
        ["bash", "-c", examples["curl"]],
        [sys.executable, "-c", examples["python"]],
        ["node", str(script)],
    ]
    for command in commands:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip(), command
        assert "error" not in done.stdout.lower()
