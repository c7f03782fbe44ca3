"""OIDC providers for tests, as real processes: oidc-provider-mock, and our own ``oidc_issuer.py``.

oidc-provider-mock issues genuine ID tokens through the authorization-code flow, with any claims set on the
user beforehand (``PUT /users/<sub>``). ``TokenIssuer`` drives tests/support/oidc_issuer.py, which can mint
tokens with any claims, rotate its keys, count JWKS fetches and run the password grant. Also here: tokens
forged the ways an attacker would (unsigned, HMAC-signed with a public key, altered after signing).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.support.processes import ServerProcess, free_port

__all__ = [
    "TokenIssuer",
    "mock_id_token",
    "start_mock_provider",
    "start_token_issuer",
    "tampered",
    "unsigned_token",
    "with_hs256",
]

CLIENT_ID = "maas-gateway"
_REDIRECT = "http://127.0.0.1/callback"


def start_mock_provider(log_dir: Path) -> ServerProcess:
    """oidc-provider-mock in a child process (importing it here would raise its deprecation warnings)."""
    port = free_port()
    args = [sys.executable, "-m", "oidc_provider_mock", "--port", str(port)]
    server = ServerProcess(
        args, port, log_dir / "oidc-provider-mock.log", health_path="/.well-known/openid-configuration"
    )
    return server.start()


def mock_id_token(
    provider: ServerProcess, sub: str, claims: dict[str, Any], client_id: str = CLIENT_ID
) -> str:
    """An ID token for ``sub`` with ``claims``, through oidc-provider-mock's authorization-code flow."""
    assert httpx.put(f"{provider.url}/users/{sub}", json=claims).status_code == 204
    params = {
        "client_id": client_id,
        "redirect_uri": _REDIRECT,
        "response_type": "code",
        "scope": "openid profile email",
    }
    consent = httpx.post(f"{provider.url}/oauth2/authorize", params=params, data={"sub": sub})
    assert consent.status_code == 302, consent.text
    code = parse_qs(urlparse(consent.headers["location"]).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": _REDIRECT,
        "client_id": client_id,
        "client_secret": "any",
    }
    answer = httpx.post(f"{provider.url}/oauth2/token", data=form)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id_token"])


class TokenIssuer:
    """A client for a running tests/support/oidc_issuer.py."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.url = server.url

    def mint(self, claims: dict[str, Any], **headers: Any) -> str:
        """A token with ``claims`` (``None`` values are left out), signed with the current key."""
        answer = httpx.post(self.url + "/mint", json={"claims": claims, "headers": headers})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["token"])

    def rotate(self, keep_old: bool = False) -> str:
        """Switch to a new signing key and return its id."""
        return str(httpx.post(self.url + "/rotate", json={"keep_old": keep_old}).json()["kid"])

    def add_user(self, username: str, password: str, claims: dict[str, Any]) -> None:
        answer = httpx.post(
            self.url + "/users", json={"username": username, "password": password, "claims": claims}
        )
        assert answer.status_code == 201

    def add_client(self, client_id: str, secret: str | None, redirect_uris: list[str]) -> None:
        """A client of the authorization-code flow (``secret=None``: a public client)."""
        data = {"client_id": client_id, "secret": secret, "redirect_uris": redirect_uris}
        assert httpx.post(self.url + "/clients", json=data).status_code == 201

    def override_next_id_token(self, **claims: Any) -> None:
        """Claims set on the next authorization-code ID token only (``None`` leaves one out)."""
        assert httpx.post(self.url + "/id-token-overrides", json={"claims": claims}).status_code == 200

    def stats(self) -> dict[str, int]:
        return {name: int(value) for name, value in httpx.get(self.url + "/stats").json().items()}

    def publish_oct(self, kid: str, secret: str) -> None:
        assert httpx.post(self.url + "/publish-oct", json={"kid": kid, "secret": secret}).status_code == 201

    def hang(self, seconds: float) -> None:
        """Make key requests, from now on for ``seconds``, wait until that time is up to be answered;
        ``hang(0)`` ends a hang early, releasing the requests that wait."""
        assert httpx.post(self.url + "/hang", json={"seconds": seconds}).status_code == 200

    def jwks_fetches(self) -> int:
        return int(httpx.get(self.url + "/stats").json()["jwks_fetches"])

    def public_key_pem(self) -> bytes:
        """The current public key as PEM, the 'secret' of an HMAC key-confusion attack."""
        jwk = httpx.get(self.url + "/jwks").json()["keys"][0]
        key = RSAAlgorithm.from_jwk(jwk)
        assert isinstance(key, rsa.RSAPublicKey)
        return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def start_token_issuer(log_dir: Path, port: int | None = None) -> TokenIssuer:
    """tests/support/oidc_issuer.py on ``port`` (a free one if not given), once it answers."""
    port = port or free_port()
    script = str(Path(__file__).parent / "oidc_issuer.py")
    server = ServerProcess([sys.executable, script, str(port)], port, log_dir / f"issuer-{port}.log")
    return TokenIssuer(server.start())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def unsigned_token(claims: dict[str, Any]) -> str:
    """An ``alg: none`` token: a header and payload with an empty signature."""
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(claims)}."


def with_hs256(claims: dict[str, Any], secret: bytes, kid: str | None = None) -> str:
    """A token HMAC-signed with ``secret`` (PyJWT refuses to use a PEM key as an HMAC secret)."""
    header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    signing_input = f"{_segment(header)}.{_segment(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def tampered(token: str, **changes: Any) -> str:
    """``token`` with its payload changed and its original signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{_segment({**claims, **changes})}.{signature}"
