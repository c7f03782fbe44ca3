"""Metrics name users, so they stay private: where the metrics listener listens."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from maas_gateway.config import ConfigError, demo_config_text, parse_config


def _demo() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(demo_config_text())
    return data


@pytest.mark.parametrize(
    ("listen", "address"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("0.0.0.0:19464", ("0.0.0.0", 19464)),
        ("[::1]:9464", ("::1", 9464)),
        ("[::]:9464", ("::", 9464)),
        ("metrics.internal:9100", ("metrics.internal", 9100)),
    ],
)
def test_metrics_listen_accepts_host_and_port(listen: str, address: tuple[str, int]) -> None:
    """`metrics.listen` takes host:port, with IPv6 addresses in brackets; the default is loopback 9464."""
    data = _demo()
    data["metrics"] = {"listen": listen}
    assert parse_config(data).metrics.address == address
    assert parse_config(_demo()).metrics.address == ("127.0.0.1", 9464)
    assert parse_config(_demo()).metrics.on_api_port is False


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        ("9464", "'9464' is not a listening address; write host:port, such as 127.0.0.1:9464"),
        (":9464", "':9464' is not a listening address"),
        ("::1:9464", "Put the IPv6 address of '::1:9464' in brackets, as in [::1]:9464."),
        ("[::1:9464", "'[::1:9464' opens an IPv6 address with '[' but does not close it with ']'."),
        ("[nope]:9464", "'nope' in '[nope]:9464' is not an IPv6 address."),
        ("127.0.0.1:0", "The port of '127.0.0.1:0' must be a number from 1 to 65535."),
        ("127.0.0.1:http", "The port of '127.0.0.1:http' must be a number from 1 to 65535."),
        ("127.0.0.1:70000", "The port of '127.0.0.1:70000' must be a number from 1 to 65535."),
    ],
)
def test_metrics_listen_rejects_bad_addresses_with_a_sentence(listen: str, message: str) -> None:
    """A bad `metrics.listen` is refused at load time with a sentence naming the field and the fix."""
    data = _demo()
    data["metrics"] = {"listen": listen}
    with pytest.raises(ConfigError) as raised:
        parse_config(data)
    assert "metrics.listen: " + message in str(raised.value)
