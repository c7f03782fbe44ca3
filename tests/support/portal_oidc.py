"""The portal's sign-in through an identity provider in tests: a gateway trusting a running
tests/support/oidc_issuer.py for the portal, its users, and the flow driven over plain HTTP.

The issuer's users: ``alice`` (group premium), ``boss`` (groups idp-admins and free) and ``nobody`` (no
group), all with the password ``<name>-password``. The gateway names them ``idp:<name>``.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import httpx

from tests.support.gateways import start_gateway
from tests.support.oidc_provider import TokenIssuer
from tests.support.portal import ADMIN_KEY, next_address, portal_config
from tests.support.processes import GatewayProcess

__all__ = [
    "API_AUDIENCE",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "ENV",
    "LABEL",
    "authorize",
    "begin",
    "idp_client",
    "oidc_portal_config",
    "register",
    "start_oidc_portal",
]

CLIENT_ID = "maas-gateway"
CLIENT_SECRET = "portal-test-client-secret"  # a test's own secret, given through the env
API_AUDIENCE = "maas-api"  # API calls' tokens; the portal's ID tokens are for CLIENT_ID
LABEL = "Test IdP"
ENV = {"MAAS_ADMIN_KEY": ADMIN_KEY, "MAAS_OIDC_CLIENT_SECRET": CLIENT_SECRET}
_START = re.compile(r'<a class="provider" href="([^"]+)">')
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def oidc_portal_config(backend: str, directory: Path, issuer: TokenIssuer, **portal: Any) -> dict[str, Any]:
    """The portal configuration (``portal_config``) with ``issuer`` as its one OIDC issuer, offered on the
    sign-in page as ``LABEL``, its client secret in MAAS_OIDC_CLIENT_SECRET (``ENV``)."""
    config = portal_config(backend, directory, **portal)
    config["oidc"] = {
        "issuers": [
            {
                "issuer": issuer.url,
                "audience": API_AUDIENCE,
                "group_tiers": {"premium": "premium", "free": "free"},
                "admin_groups": ["idp-admins"],
                "namespace": "idp",
                "portal_client_id": CLIENT_ID,
                "portal_client_secret_env": "MAAS_OIDC_CLIENT_SECRET",
                "portal_name": LABEL,
            }
        ]
    }
    return config


def register(issuer: TokenIssuer, *gateways: GatewayProcess) -> None:
    """Make the portal's client (redirecting to ``gateways``' callbacks) and the users known to ``issuer``."""
    issuer.add_client(
        CLIENT_ID, CLIENT_SECRET, [f"{gateway.url}/portal/auth/callback" for gateway in gateways]
    )
    for name, groups in (("alice", ["premium"]), ("boss", ["idp-admins", "free"]), ("nobody", [])):
        issuer.add_user(name, f"{name}-password", {"groups": groups, "preferred_username": name})


def start_oidc_portal(backend: str, directory: Path, issuer: TokenIssuer, **portal: Any) -> GatewayProcess:
    """A gateway of ``oidc_portal_config``, registered at ``issuer``."""
    server = start_gateway(oidc_portal_config(backend, directory, issuer, **portal), directory, env=ENV)
    register(issuer, server)
    return server


def idp_client(gateway: GatewayProcess) -> httpx.Client:
    """A browser-like client of the gateway from a client address of its own."""
    return httpx.Client(base_url=gateway.url, headers={"X-Forwarded-For": next_address()}, timeout=30)


def begin(client: httpx.Client, issuer: TokenIssuer, next_url: str = "/portal/") -> str:
    """Press "Sign in with LABEL": the provider's authorization URL the gateway redirects to."""
    page = client.get("/portal/sign-in", params={"next": next_url})
    link = _START.search(page.text)
    assert link is not None, "the sign-in page has no button for the provider"
    answer = client.get(html.unescape(link.group(1)))
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith(issuer.url + "/authorize?")
    return location


def authorize(location: str, user: str, password: str | None = None) -> str:
    """Sign in at the provider's form: the callback URL it sends the browser back to."""
    page = httpx.get(location)
    assert page.status_code == 200, page.text
    fields = {name: html.unescape(value) for name, value in _HIDDEN.findall(page.text)}
    fields.update(username=user, password=password or f"{user}-password")
    answer = httpx.post(location.split("?")[0], data=fields)
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]
