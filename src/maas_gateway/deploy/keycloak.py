"""The optional Keycloak component: its addresses, its contract with the portal, and its Secret.

``components/keycloak`` runs Keycloak with the realm ``maas`` and points the gateway's ``oidc`` settings
at it. Two addresses matter, both as browsers see them: Keycloak's (``keycloak_url``: the issuer in every
token, set as KC_HOSTNAME, and the gateway's configured issuer) and the gateway's (``gateway_url``: the
portal's sign-in callback, ``{gateway_url}/portal/auth/callback``, is the client's only redirect URI).

The component's passwords are never part of the tree: ``secret_manifest`` writes the Secret
``maas-keycloak`` with fresh random values, to be created once (``kubectl create``, which refuses to
overwrite it, since Keycloak keeps the values it imported at its first start).
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Callable
from urllib.parse import urlsplit

import yaml

__all__ = [
    "CALLBACK_PATH",
    "CLIENT_ID",
    "DEFAULT_GATEWAY_URL",
    "DEFAULT_KEYCLOAK_URL",
    "REALM",
    "SECRET_KEYS",
    "SECRET_NAME",
    "KeycloakURLError",
    "callback_url",
    "check_url",
    "is_routable",
    "issuer_url",
    "secret_manifest",
]

REALM = "maas"
CLIENT_ID = "maas-gateway"
# The portal's OIDC redirect: the portal's sign-in must send exactly this path as its redirect_uri.
CALLBACK_PATH = "/portal/auth/callback"
# Port-forwards of the two Services (docs/deploy.md): they work on any cluster, with no ingress at all.
DEFAULT_KEYCLOAK_URL = "http://127.0.0.1:8080"
DEFAULT_GATEWAY_URL = "http://127.0.0.1:8000"
SECRET_NAME = "maas-keycloak"  # noqa: S105  # the Secret's name, not a secret
# What each key of the Secret is for; every one is random, 32 hex digits or more.
SECRET_KEYS = {
    "admin-password": "Keycloak's temporary administrator `admin` (master realm, admin console)",
    "client-secret": "the client secret of maas-gateway (the portal's sign-in, `maas token`)",
    "demo-password": "the demo users freeuser1, freeuser2, premiumuser1, premiumuser2, enterpriseuser1",
    "realm-admin-password": "the realm's administrator maas-admin (group maas-admins)",
}


_HOST_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*")


class KeycloakURLError(ValueError):
    """An address given for Keycloak or the gateway cannot be used; the message says why."""


def check_url(label: str, url: str) -> str:
    """``url`` in lower case without a trailing slash, once it is an http(s) address of a host name or IP
    address with no path, query or fragment (it becomes an issuer and a redirect URI, compared exactly)."""
    parts = urlsplit(url.strip().lower())
    if parts.scheme not in ("http", "https") or not _is_host(parts.hostname or ""):
        raise KeycloakURLError(f"'{url}' is not an address for {label}; give one such as https://host.")
    if parts.path.strip("/") or parts.query or parts.fragment or parts.username or parts.password:
        raise KeycloakURLError(
            f"'{url}' is not an address for {label}: give the scheme, host and port only, without a path."
        )
    try:
        parts.port  # noqa: B018  # reading it checks it: urlsplit only raises on access
    except ValueError:
        raise KeycloakURLError(f"'{url}' has no valid port; {label} needs one from 1 to 65535.") from None
    return f"{parts.scheme}://{parts.netloc}"


def _is_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return _HOST_NAME.fullmatch(host) is not None
    return True


def is_routable(url: str) -> bool:
    """Whether ingress can route ``url``: a host name, not an IP address or localhost (port-forwards)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


def issuer_url(keycloak_url: str) -> str:
    """The issuer of the realm's tokens, as Keycloak writes it in ``iss`` when KC_HOSTNAME is the URL."""
    return f"{keycloak_url}/realms/{REALM}"


def callback_url(gateway_url: str) -> str:
    """The portal's sign-in callback, the client's redirect URI."""
    return gateway_url + CALLBACK_PATH


def secret_manifest(namespace: str, *, token_hex: Callable[[int], str] = secrets.token_hex) -> str:
    """The Secret ``maas-keycloak`` as YAML, every value fresh from ``token_hex`` (24 bytes each).

    Hex keeps the values free of characters that need quoting in a shell, a URL or a JSON placeholder.
    """
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": SECRET_NAME,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/name": "maas-keycloak",
                "app.kubernetes.io/part-of": "maas-gateway",
            },
        },
        "type": "Opaque",
        "stringData": {key: token_hex(24) for key in SECRET_KEYS},
    }
    header = "".join(f"# {key}: {purpose}\n" for key, purpose in SECRET_KEYS.items())
    return header + yaml.safe_dump(secret, sort_keys=False)
