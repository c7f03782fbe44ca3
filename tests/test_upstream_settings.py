"""The configuration of the upstream client: removed settings, backend URLs, TLS files, idle timeout."""

from __future__ import annotations

import asyncio
import copy
import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from maas_gateway.application import Application
from maas_gateway.config import ConfigError, demo_config_text, parse_config
from maas_gateway.upstream import HttptoolsTransport
from maas_gateway.upstream.target import parse_target
from tests.support.certificates import PrivateCA


def _demo() -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(yaml.safe_load(demo_config_text()))
    return data


@pytest.mark.parametrize("client", ["httptools", "aiohttp"])
def test_the_removed_upstream_client_setting_is_ignored_with_a_warning(
    client: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A file written for an earlier version still loads; the log says the setting is gone."""
    data = _demo()
    data["server"]["upstream_client"] = client
    with caplog.at_level(logging.WARNING, logger="maas_gateway"):
        config = parse_config(data)
    assert "upstream_client" not in config.server.model_dump()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("server.upstream_client was removed and is ignored" in w for w in warnings), warnings


def test_a_backend_password_is_never_shown_where_the_configuration_is() -> None:
    """``GET /admin/models`` dumps the models; a password in a backend URL comes out as ``***``."""
    data = _demo()
    data["models"][0]["backends"] = ["https://model-user:s3cret@vllm.example:8443/base"]
    config = parse_config(data)
    shown = config.models[0].model_dump(mode="json")["backends"]
    assert shown == ["https://model-user:***@vllm.example:8443/base"]
    assert config.models[0].backend_urls == ["https://model-user:s3cret@vllm.example:8443/base"]
    assert "s3cret" not in repr(parse_target(config.models[0].backend_urls[0]))


def test_upstream_tls_and_idle_settings_load() -> None:
    data = _demo()
    data["server"].update(
        {
            "upstream_idle_timeout": "90s",
            "upstream_ca_bundle": "/etc/pki/service-ca.crt",
            "upstream_client_cert": "/etc/maas/tls/tls.crt",
            "upstream_client_key": "/etc/maas/tls/tls.key",
        }
    )
    server = parse_config(data).server
    assert server.upstream_idle_timeout == 90
    assert server.upstream_ca_bundle == "/etc/pki/service-ca.crt"
    assert parse_config(_demo()).server.upstream_idle_timeout == 60


def test_a_client_key_without_its_certificate_is_refused() -> None:
    data = _demo()
    data["server"]["upstream_client_key"] = "/etc/maas/tls/tls.key"
    with pytest.raises(ConfigError, match="upstream_client_cert`, which is not set"):
        parse_config(data)


def test_the_gateway_builds_its_upstream_client_from_the_settings(tmp_path: Path) -> None:
    """The CA bundle, client certificate and idle timeout reach the transport the gateway starts with."""
    ca = PrivateCA(tmp_path)
    client = ca.issue("gateway", client=True)
    data = _demo()
    data["server"].update(
        {
            "access_log": False,
            "upstream_idle_timeout": "90s",
            "upstream_ca_bundle": str(ca.cert_path),
            "upstream_client_cert": str(client.cert),
            "upstream_client_key": str(client.key),
        }
    )
    application = Application(parse_config(data))

    async def start_and_stop() -> None:
        await application.start()
        try:
            transport = application.services.transport
            assert isinstance(transport, HttptoolsTransport)
            assert transport.idle_timeout == 90
        finally:
            await application.stop()

    asyncio.run(start_and_stop())


def test_an_unusable_ca_bundle_stops_the_gateway_before_it_starts(tmp_path: Path) -> None:
    data = _demo()
    data["server"]["upstream_ca_bundle"] = str(tmp_path / "missing.pem")
    with pytest.raises(ValueError, match=r"^The CA bundle .*missing\.pem cannot be used: No such file"):
        Application(parse_config(data))
