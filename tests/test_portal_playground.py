"""The playground's key over HTTP: made on request for the session (CSRF token required), ephemeral,
short-lived, for the chosen model only, mine, unable to mint keys, and listed as "playground"."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from maas_gateway.portal.pages.playground import PLAYGROUND_LIFETIME
from tests.support.developer_portal import calls, developer_config
from tests.support.gateways import start_gateway
from tests.support.portal import ADMIN_KEY, create_account, csrf_token, sign_in
from tests.support.processes import GatewayProcess, ServerProcess


@pytest.fixture(scope="module")
def portal(simulator: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    directory = tmp_path_factory.mktemp("portal-playground")
    config = developer_config(simulator.url, directory)
    create_account(config, "dev1", "openshift")
    server = start_gateway(config, directory, env={"MAAS_ADMIN_KEY": ADMIN_KEY})
    yield server
    server.stop()


def playground_key(client: httpx.Client, model: str, token: str | None) -> httpx.Response:
    headers = {"X-CSRF-Token": token} if token is not None else {}
    return client.post("/portal/playground/key", data={"model": model}, headers=headers)


def test_the_page_offers_my_models_and_loads_its_script_only(portal: GatewayProcess) -> None:
    """The playground lists dev1's models, loads playground.js from the package, and has no inline script,
    inline handler or inline style (the CSP forbids them and connect-src stays 'self')."""
    with sign_in(portal.url, "dev1", "openshift") as client:
        page = client.get("/portal/playground")
        assert page.status_code == 200
        assert '<option value="simulator-model">' in page.text
        assert "premium-model" not in page.text
        assert '<script src="/portal/static/playground.js" defer></script>' in page.text
        assert page.text.count("<script") == page.text.count("<script src=")
        assert " onclick=" not in page.text
        assert " style=" not in page.text
        assert "connect-src 'self'" in page.headers["content-security-policy"]
        assert client.get("/portal/static/playground.js").status_code == 200


def test_the_key_is_ephemeral_short_lived_for_one_model_and_mine(portal: GatewayProcess) -> None:
    """The key answers for the chosen model only, expires within the playground's lifetime, is not cached,
    is dev1's (listed as playground), and cannot create keys through /v1/keys."""
    with sign_in(portal.url, "dev1", "openshift") as client:
        token = csrf_token(client.get("/portal/playground").text)
        before = time.time()
        answer = playground_key(client, "simulator-model", token)
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == "no-store"
        data = answer.json()
        assert data["model"] == "simulator-model"
        assert data["expires_at"] <= before + PLAYGROUND_LIFETIME + 5
        assert calls(portal.url, data["key"])
        assert not _may_call(portal, data["key"], "simulator-embed")
        minted = httpx.post(
            f"{portal.url}/v1/keys",
            json={"name": "escalate"},
            headers={"Authorization": f"Bearer {data['key']}"},
        )
        assert minted.status_code == 403
        assert minted.json()["error"]["code"] == "ephemeral_key_cannot_create"
        listed = httpx.get(
            f"{portal.url}/admin/keys",
            params={"user": "dev1"},
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        ).json()["data"]
        mine = [key for key in listed if key["id"] == data["id"]]
        assert mine
        assert mine[0]["ephemeral"]
        assert mine[0]["models"] == ["simulator-model"]
        assert "playground</span>" in client.get("/portal/keys").text


def _may_call(portal: GatewayProcess, key: str, model: str) -> bool:
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3}
    answer = httpx.post(
        f"{portal.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status_code in (200, 403), answer.text
    return answer.status_code == 200


def test_no_key_without_the_csrf_token_or_for_a_model_outside_my_tier(portal: GatewayProcess) -> None:
    """Without the session's CSRF token the endpoint is a 403 and makes no key; a model outside the tier
    is refused as /v1/keys refuses it, in JSON; without a session there is no key either."""
    count = _key_count(portal)
    with sign_in(portal.url, "dev1", "openshift") as client:
        assert playground_key(client, "simulator-model", None).status_code == 403
        assert playground_key(client, "simulator-model", "x" * 43).status_code == 403
        token = csrf_token(client.get("/portal/playground").text)
        outside = playground_key(client, "premium-model", token)
        assert outside.status_code == 403
        assert "not available on the tier 'free'" in outside.json()["error"]["message"]
    anonymous = httpx.post(f"{portal.url}/portal/playground/key", data={"model": "simulator-model"})
    assert anonymous.status_code == 303
    assert _key_count(portal) == count


def _key_count(portal: GatewayProcess) -> int:
    answer = httpx.get(
        f"{portal.url}/admin/keys",
        params={"user": "dev1", "include_inactive": "true"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    total: int = answer.json()["total"]
    return total
