"""What a backend learns about the caller, over real HTTP through a recording backend: identity headers
under any spelling are the gateway's alone, forwarding headers come from the connection (or a trusted
proxy), x-maas-user is unambiguous, and the failed-authentication throttle keys on the same address."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory
from tests.support.processes import GatewayProcess, ServerProcess

KEY = "enterpriseuser1_key"
CHAT = {"model": "record", "messages": [{"role": "user", "content": "Hello"}]}


def _config(fake_backend: ServerProcess, **server: Any) -> dict[str, Any]:
    config = demo_dict(fake_backend.url, limits=False)
    config["models"].append({"name": "record", "backends": [f"{fake_backend.url}/record"]})
    config["server"].update(server)
    return config


def _seen(
    gateway: GatewayProcess, fake_backend: ServerProcess, headers: dict[str, str], key: str = KEY
) -> dict[str, str]:
    """The headers the backend received for one chat request sent with ``headers``."""
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json=CHAT,
        headers={"Authorization": f"Bearer {key}", **headers},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return dict(httpx.get(fake_backend.url + "/record/last").json())


@pytest.fixture
def direct(fake_backend: ServerProcess, gateway_factory: GatewayFactory) -> GatewayProcess:
    """A gateway that trusts no proxy, with two users whose names look alike once percent-decoded."""
    config = _config(fake_backend)
    config["api_keys"] += [
        {"user": "zoë", "tier": "enterprise", "key": "umlaut_user_key"},
        {"user": "zo%C3%AB", "tier": "enterprise", "key": "percent_user_key"},
    ]
    return gateway_factory(config)


def test_identity_headers_in_any_spelling_never_reach_the_backend(
    direct: GatewayProcess, fake_backend: ServerProcess
) -> None:
    """x_maas_user, x.maas.user, X-MaaS-Tier, x_forwarded_user and content_length (names that backends
    reading _ as - take for the real ones) are dropped; the gateway's own x-maas-user arrives; an ordinary
    header with an underscore is kept."""
    forged = {
        "x_maas_user": "admin",
        "x.maas.user": "admin",
        "X-MaaS-Tier": "premium",
        "x_forwarded_user": "root",
        "x_auth_request_email": "root@example.com",
        "content_length": "0",
        "x_custom_thing": "kept",
    }
    seen = _seen(direct, fake_backend, forged)
    for name in ("x_maas_user", "x.maas.user", "x_forwarded_user", "x_auth_request_email", "content_length"):
        assert name not in seen, name
    assert seen["x-maas-user"] == "enterpriseuser1"
    assert seen["x-maas-tier"] == "enterprise"
    assert seen["x_custom_thing"] == "kept"


def test_forwarding_headers_come_from_the_connection(
    direct: GatewayProcess, fake_backend: ServerProcess
) -> None:
    """A client's X-Forwarded-For, -Proto, -Host, -Port, X-Real-IP and Forwarded are not passed on: the
    backend sees X-Forwarded-For with the real client address, the connection's scheme and Host."""
    forged = {
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example.com",
        "X-Forwarded-Port": "443",
        "X-Real-IP": "203.0.113.7",
        "Forwarded": "for=203.0.113.7",
        "x_forwarded_for": "203.0.113.8",
    }
    seen = _seen(direct, fake_backend, forged)
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == f"127.0.0.1:{direct.port}"
    for name in ("x-forwarded-port", "x-real-ip", "forwarded", "x_forwarded_for"):
        assert name not in seen, name


def test_x_maas_user_tells_apart_users_whose_names_decode_alike(
    direct: GatewayProcess, fake_backend: ServerProcess
) -> None:
    """The users `zoë` and `zo%C3%AB` reach the backend as different x-maas-user values, each of which
    percent-decodes back to its user."""
    umlaut = _seen(direct, fake_backend, {}, key="umlaut_user_key")["x-maas-user"]
    percent = _seen(direct, fake_backend, {}, key="percent_user_key")["x-maas-user"]
    assert (umlaut, percent) == ("zo%C3%AB", "zo%25C3%25AB")
    assert (unquote(umlaut), unquote(percent)) == ("zoë", "zo%C3%AB")


def test_a_trusted_proxy_s_forwarding_is_kept_and_extended(
    fake_backend: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """Behind a trusted proxy (127.0.0.1/32) its X-Forwarded-Proto, -Host, X-Real-IP are kept, and the
    proxy's address is appended to X-Forwarded-For and Forwarded; identity headers are still dropped."""
    gateway = gateway_factory(_config(fake_backend, trusted_proxies=["127.0.0.1/32"]))
    sent = {
        "X-Forwarded-For": "203.0.113.7, 10.1.2.3",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "api.example.com",
        "X-Real-IP": "203.0.113.7",
        "Forwarded": "for=203.0.113.7",
        "X-MaaS-User": "admin",
    }
    seen = _seen(gateway, fake_backend, sent)
    assert seen["x-forwarded-for"] == "203.0.113.7, 10.1.2.3, 127.0.0.1"
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-forwarded-host"] == "api.example.com"
    assert seen["x-real-ip"] == "203.0.113.7"
    assert seen["forwarded"] == "for=203.0.113.7, for=127.0.0.1"
    assert seen["x-maas-user"] == "enterpriseuser1"


def _failures(gateway: GatewayProcess, forwarded_for: list[str]) -> list[int]:
    return [
        httpx.get(
            gateway.url + "/v1/models",
            headers={"Authorization": "Bearer wrong-key-123", "X-Forwarded-For": address},
            timeout=10,
        ).status_code
        for address in forwarded_for
    ]


def test_the_throttle_keys_on_the_client_behind_a_trusted_proxy(
    fake_backend: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """Behind a trusted proxy, failed attempts count against the forwarded client address: after three
    failures that address gets 429 while another client behind the same proxy is still served."""
    config = _config(fake_backend, trusted_proxies=["127.0.0.0/8"])
    config["security"] = {"auth_failures": {"burst": 3, "per": "60s"}}
    gateway = gateway_factory(config)
    assert _failures(gateway, ["198.51.100.1"] * 4) == [401, 401, 401, 429]
    other = httpx.get(
        gateway.url + "/v1/models",
        headers={"Authorization": f"Bearer {KEY}", "X-Forwarded-For": "198.51.100.2"},
        timeout=10,
    )
    assert other.status_code == 200


def test_a_forged_forwarded_for_does_not_escape_the_throttle(
    fake_backend: ServerProcess, gateway_factory: GatewayFactory
) -> None:
    """Without trusted proxies, an attacker who changes X-Forwarded-For on every attempt is still one
    address: the fourth failure is a 429."""
    config = _config(fake_backend)
    config["security"] = {"auth_failures": {"burst": 3, "per": "60s"}}
    gateway = gateway_factory(config)
    assert _failures(gateway, [f"198.51.100.{i}" for i in range(4)]) == [401, 401, 401, 429]
