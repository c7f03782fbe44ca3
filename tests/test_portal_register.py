"""Self-registration (`portal.self_registration`) over HTTP against a real gateway: off by default,
new accounts in the configured tier or waiting for approval, no claiming of existing users, throttled."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from maas_gateway.config import ConfigError, parse_config
from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory
from tests.support.portal import ADMIN_KEY, create_account, csrf_token, next_address, portal_config, sign_in
from tests.support.processes import GatewayProcess, ServerProcess


def _register(client: httpx.Client, user: str, password: str, again: str | None = None) -> httpx.Response:
    token = csrf_token(client.get("/portal/register").text)
    data = {"user": user, "display_name": "", "password": password, "password_again": again or password}
    return client.post("/portal/register", data={**data, "csrf_token": token})


def _client(server: GatewayProcess) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-Forwarded-For": next_address()}, timeout=30)


def _gateway(
    simulator: ServerProcess, factory: GatewayFactory, directory: Path, **registration: object
) -> GatewayProcess:
    config = portal_config(simulator.url, directory, self_registration=registration)
    create_account(config, "dev1", "openshift")
    return factory(config, env={"MAAS_ADMIN_KEY": ADMIN_KEY})


def test_registration_is_off_by_default(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """Without `self_registration.enabled`, /portal/register is a 404 page and sign-in offers no link."""
    server = _gateway(simulator, gateway_factory, tmp_path)
    with _client(server) as client:
        assert client.get("/portal/register").status_code == 404
        assert "/portal/register" not in client.get("/portal/sign-in").text


def test_a_new_account_gets_the_configured_tier_and_existing_users_cannot_be_claimed(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """A visitor registers and signs in on the configured tier; names of existing users (configuration
    file keys, existing accounts), bad names and bad passwords are refused with a sentence, creating
    nothing; a form without its CSRF token is refused."""
    server = _gateway(simulator, gateway_factory, tmp_path, enabled=True, tier="premium", per_address=50)
    with _client(server) as client:
        assert "/portal/register" in client.get("/portal/sign-in").text
        created = _register(client, "newdev", "new-password")
        assert created.status_code == 200, created.text
        assert "is ready" in created.text
        for user, password, again, message in (
            ("freeuser1", "some-password", None, "taken"),
            ("dev1", "some-password", None, "taken"),
            ("newdev", "other-password", None, "taken"),
            ("NewDev2", "some-password", None, "lower-case"),
            ("ns:user", "some-password", None, "lower-case"),
            ("fine-name", "short", None, "at least 8"),
            ("fine-name", "some-password", "other-password", "not the same"),
        ):
            refused = _register(client, user, password, again)
            assert refused.status_code == 400, user
            assert message in refused.text, (user, refused.text)
        forged = client.post(
            "/portal/register", data={"user": "x1", "password": "p" * 9, "password_again": "p" * 9}
        )
        assert forged.status_code == 403
    with sign_in(server.url, "newdev", "new-password") as signed:
        assert '<span class="tier">premium</span>' in signed.get("/portal/").text
    with sign_in(server.url, "dev1", "openshift") as owner:
        assert owner.get("/portal/").status_code == 200  # the original dev1 password still works
    with _client(server) as client:
        token = csrf_token(client.get("/portal/sign-in").text)
        data = {"user": "fine-name", "password": "some-password", "csrf_token": token}
        assert client.post("/portal/sign-in", data=data).status_code == 401


def test_with_approval_a_new_account_waits_until_an_administrator_enables_it(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """With `approval`, the new account cannot sign in (403, waits for approval) until the user is enabled."""
    server = _gateway(simulator, gateway_factory, tmp_path, enabled=True, approval=True, per_address=3)
    with _client(server) as client:
        assert "waits for an administrator" in _register(client, "waiting", "wait-password").text
        token = csrf_token(client.get("/portal/sign-in").text)
        data = {"user": "waiting", "password": "wait-password", "csrf_token": token}
        pending = client.post("/portal/sign-in", data=data)
        assert pending.status_code == 403
        assert "approval" in pending.text
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        assert httpx.patch(
            f"{server.url}/admin/users/waiting", json={"disabled": False}, headers=admin
        ).is_success
        approved = client.post(
            "/portal/sign-in", data={**data, "csrf_token": csrf_token(client.get("/portal/sign-in").text)}
        )
        assert approved.status_code == 303
        for attempt in range(2):
            _register(client, f"more{attempt}", "more-password")
        throttled = _register(client, "one-too-many", "more-password")
        assert throttled.status_code == 429
        assert int(throttled.headers["retry-after"]) > 0


def test_a_registration_tier_must_exist() -> None:
    """A configuration naming an unknown tier for self-registration is refused at load, naming the field."""
    data = demo_dict("http://127.0.0.1:1")
    data["portal"] = {"self_registration": {"enabled": True, "tier": "gold"}}
    with pytest.raises(ConfigError, match=r"portal\.self_registration\.tier: unknown tier 'gold'"):
        parse_config(data)


def test_without_a_database_accounts_and_sessions_live_in_memory(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """A gateway without `database.url` keeps accounts and sessions in memory: a registered visitor signs
    in and sees their tier, and signing out ends the session."""
    config = portal_config(simulator.url, tmp_path, self_registration={"enabled": True})
    del config["database"]
    server = gateway_factory(config)
    with _client(server) as client:
        assert _register(client, "memory-user", "memory-password").status_code == 200
    with sign_in(server.url, "memory-user", "memory-password") as signed:
        page = signed.get("/portal/")
        assert '<span class="tier">free</span>' in page.text
        signed.post("/portal/sign-out", data={"csrf_token": csrf_token(page.text)})
        assert signed.get("/portal/").status_code == 303
