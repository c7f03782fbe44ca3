"""The portal against text no database row can hold, over real HTTP with a PostgreSQL database: a NUL
character in a form or a query is a 400 page, never a 500, signed in or not."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support.gateways import start_gateway
from tests.support.portal import (
    ADMIN_KEY,
    create_account,
    csrf_token,
    next_address,
    portal_config,
    sign_in,
)
from tests.support.postgres_server import throwaway_database
from tests.support.processes import ServerProcess


def test_a_nul_character_is_a_400_page_on_postgresql(simulator: ServerProcess, tmp_path: Path) -> None:
    """Signing in as `a<NUL>b` (no account needed), naming a key `a<NUL>b`, or revoking key id `a<NUL>b`
    is a 400 page saying what is wrong (PostgreSQL's text cannot hold U+0000: these were 500s); the
    sign-in and the key list go on working afterwards."""
    with throwaway_database("postgresql", tmp_path) as url:
        config = portal_config(simulator.url, tmp_path)
        config["database"]["url"] = url
        create_account(config, "dev1", "openshift")
        gateway = start_gateway(config, tmp_path, env={"MAAS_ADMIN_KEY": ADMIN_KEY})
        try:
            address = {"X-Forwarded-For": next_address()}
            with httpx.Client(base_url=gateway.url, headers=address, timeout=30) as client:
                token = csrf_token(client.get("/portal/sign-in").text)
                data = {"user": "a\x00b", "password": "x", "next": "/portal/", "csrf_token": token}
                refused = client.post("/portal/sign-in", data=data)
                assert refused.status_code == 400, refused.text
                assert "NUL character" in refused.text
            with sign_in(gateway.url, "dev1", "openshift") as client:
                token = csrf_token(client.get("/portal/keys").text)
                named = client.post("/portal/keys", data={"name": "a\x00b", "csrf_token": token})
                assert named.status_code == 400, named.text
                revoked = client.post("/portal/keys/revoke", data={"key_id": "a\x00b", "csrf_token": token})
                assert revoked.status_code == 400, revoked.text
                assert client.get("/portal/keys", params={"search": "a\x00b"}).status_code in (200, 400)
                assert client.get("/portal/keys").status_code == 200
        finally:
            gateway.stop()
