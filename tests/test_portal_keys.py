"""The portal's Keys page over HTTP against a real gateway: create (secret once), rotate, revoke, revoke
all, under the same rules as /v1/keys, and what an attacker would try (another user's key, markup,
missing CSRF), with the keys called through the official OpenAI SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.developer_portal import (
    DAY,
    MARKUP,
    calls,
    create_key,
    developer_config,
    key_id_on,
    secret_on,
)
from tests.support.gateways import GatewayFactory, start_gateway
from tests.support.polling import wait_until
from tests.support.portal import ADMIN_KEY, create_account, csrf_token, sign_in
from tests.support.postgres_server import throwaway_database
from tests.support.processes import GatewayProcess, ServerProcess


@pytest.fixture(scope="module")
def portal(simulator: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway with accounts dev1 and dev2 (tier free)."""
    directory = tmp_path_factory.mktemp("portal-keys")
    config = developer_config(simulator.url, directory)
    create_account(config, "dev1", "openshift")
    create_account(config, "dev2", "openshift2")
    server = start_gateway(config, directory, env={"MAAS_ADMIN_KEY": ADMIN_KEY})
    yield server
    server.stop()


def dev1_keys(portal: GatewayProcess) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{portal.url}/admin/keys",
        params={"user": "dev1", "include_inactive": "true", "page_size": 500},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


def test_a_created_key_is_shown_once_uncached_and_answers_the_api(portal: GatewayProcess) -> None:
    """Creating a key answers with its secret (no-store), which calls the API; the list never shows it."""
    with sign_in(portal.url, "dev1", "openshift") as client:
        answer = create_key(client, "laptop")
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == "no-store"
        secret = secret_on(answer.text)
        assert secret.startswith("maas_")
        assert 'data-copy-target="secret"' in answer.text
        listing = client.get("/portal/keys")
        assert key_id_on(answer.text) in listing.text
        assert secret not in listing.text
        assert calls(portal.url, secret)


def test_a_key_name_with_markup_is_shown_as_text(portal: GatewayProcess) -> None:
    """A name with markup appears escaped on the result page and in the list, never as markup."""
    with sign_in(portal.url, "dev1", "openshift") as client:
        answer = create_key(client, MARKUP)
        assert answer.status_code == 200, answer.text
        listing = client.get("/portal/keys").text
        for html in (answer.text, listing):
            assert MARKUP not in html
            assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in html


def test_a_post_without_csrf_creates_nothing(portal: GatewayProcess) -> None:
    """Create, revoke and revoke-all without the CSRF token (or with another one) are 403 pages, and no key
    is created or revoked."""
    with sign_in(portal.url, "dev1", "openshift") as client:
        secret = secret_on(create_key(client, "kept").text)
        before = len(dev1_keys(portal))
        data = {"name": "forged", "models": ["simulator-model"], "lifetime": str(DAY)}
        assert client.post("/portal/keys", data=data).status_code == 403
        assert client.post("/portal/keys", data={**data, "csrf_token": "x" * 43}).status_code == 403
        assert client.post("/portal/keys/revoke-all", data={}).status_code == 403
        assert len(dev1_keys(portal)) == before
        assert all(key["name"] != "forged" for key in dev1_keys(portal))
        assert calls(portal.url, secret)


def test_another_users_key_is_a_404_and_keeps_working(portal: GatewayProcess) -> None:
    """dev2 revoking or rotating dev1's key id gets the 404 page, and dev1's key still answers."""
    with sign_in(portal.url, "dev1", "openshift") as dev1:
        created = create_key(dev1, "dev1-only")
        secret, key_id = secret_on(created.text), key_id_on(created.text)
    with sign_in(portal.url, "dev2", "openshift2") as dev2:
        token = csrf_token(dev2.get("/portal/keys").text)
        revoke = dev2.post("/portal/keys/revoke", data={"key_id": key_id, "csrf_token": token})
        rotate = dev2.post(
            "/portal/keys/rotate", data={"key_id": key_id, "grace": "0.0", "csrf_token": token}
        )
        for answer in (revoke, rotate):
            assert answer.status_code == 404
            assert "You have no key with this id." in answer.text
        assert key_id not in dev2.get("/portal/keys").text
    assert calls(portal.url, secret)


def test_a_revoked_key_stops_at_once(portal: GatewayProcess) -> None:
    """Revoking from the list takes effect on the very next API call."""
    with sign_in(portal.url, "dev1", "openshift") as client:
        created = create_key(client, "to-revoke")
        secret, key_id = secret_on(created.text), key_id_on(created.text)
        assert calls(portal.url, secret)
        token = csrf_token(client.get("/portal/keys").text)
        answer = client.post("/portal/keys/revoke", data={"key_id": key_id, "csrf_token": token})
        assert answer.status_code == 303
        assert not calls(portal.url, secret)
        assert "revoked" in client.get("/portal/keys").text


def test_rotation_keeps_the_old_key_for_the_grace_period_only(portal: GatewayProcess) -> None:
    """Rotating with a 1 h grace shows a new secret; both keys work, and the old one is listed as retiring;
    rotating with no grace stops the old key at once."""
    with sign_in(portal.url, "dev1", "openshift") as client:
        created = create_key(client, "rotated")
        old_secret, old_id = secret_on(created.text), key_id_on(created.text)
        token = csrf_token(client.get("/portal/keys").text)
        rotated = client.post(
            "/portal/keys/rotate", data={"key_id": old_id, "grace": "3600.0", "csrf_token": token}
        )
        assert rotated.status_code == 200, rotated.text
        new_secret = secret_on(rotated.text)
        assert new_secret != old_secret
        assert calls(portal.url, old_secret)
        assert calls(portal.url, new_secret)
        assert "retiring" in client.get("/portal/keys").text
        again = client.post(
            "/portal/keys/rotate",
            data={"key_id": key_id_on(rotated.text), "grace": "0.0", "csrf_token": token},
        )
        assert again.status_code == 200, again.text
        assert not calls(portal.url, new_secret)
        assert calls(portal.url, secret_on(again.text))


def test_keys_stay_within_the_tier_and_the_lifetime_cap(portal: GatewayProcess) -> None:
    """The form offers only the tier's models and expiries up to keys.max_lifetime; a forged model outside
    the tier, an unknown model or a longer expiry is refused with the rule's sentence and creates nothing."""
    with sign_in(portal.url, "dev1", "openshift") as client:
        page = client.get("/portal/keys").text
        assert 'value="simulator-model"' in page
        assert "premium-model" not in page
        assert 'value="7776000.0"' in page
        assert 'value="31536000.0"' not in page
        before = len(dev1_keys(portal))
        outside = create_key(client, "outside", models=("premium-model",))
        assert outside.status_code == 403
        assert (
            "The model &#39;premium-model&#39; is not available on the tier &#39;free&#39;." in outside.text
        )
        unknown = create_key(client, "unknown", models=("no-such-model",))
        assert unknown.status_code == 400
        assert "does not exist" in unknown.text
        too_long = create_key(client, "too-long", lifetime=365 * DAY)
        assert too_long.status_code == 400
        assert "Choose one of the expiries offered." in too_long.text
        none = create_key(client, "none", models=())
        assert none.status_code == 400
        assert len(dev1_keys(portal)) == before


def test_revoke_all_asks_first_then_stops_every_key(portal: GatewayProcess) -> None:
    """The confirmation page lists the active keys; confirming revokes each of them."""
    with sign_in(portal.url, "dev2", "openshift2") as client:
        secrets = [secret_on(create_key(client, f"bulk-{i}").text) for i in range(2)]
        confirm = client.get("/portal/keys/revoke-all")
        assert confirm.status_code == 200
        assert "bulk-0" in confirm.text
        assert "bulk-1" in confirm.text
        answer = client.post("/portal/keys/revoke-all", data={"csrf_token": csrf_token(confirm.text)})
        assert answer.status_code == 303
        assert not any(calls(portal.url, secret) for secret in secrets)
        assert "You have no active keys." in client.get("/portal/keys/revoke-all").text


def test_a_key_revoked_on_one_replica_stops_on_the_other(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """Two replicas share a PostgreSQL database: a key created in the portal of one answers on the other,
    and once revoked in the first one's portal it stops on the other too (the change watcher), while
    the second replica had it cached."""
    with throwaway_database("postgresql", tmp_path) as url:
        config = developer_config(simulator.url, tmp_path)
        config["database"]["url"] = url
        create_account(config, "dev1", "openshift")
        env = {"MAAS_ADMIN_KEY": ADMIN_KEY}
        first, second = gateway_factory(config, env=env), gateway_factory(config, env=env)
        try:
            with sign_in(first.url, "dev1", "openshift") as client:
                created = create_key(client, "shared")
                secret, key_id = secret_on(created.text), key_id_on(created.text)
                assert calls(second.url, secret)
                token = csrf_token(client.get("/portal/keys").text)
                answer = client.post("/portal/keys/revoke", data={"key_id": key_id, "csrf_token": token})
                assert answer.status_code == 303
                assert not calls(first.url, secret)
                wait_until(
                    lambda: not calls(second.url, secret), "the revocation reaching the other replica", 5
                )
        finally:
            first.stop()
            second.stop()
