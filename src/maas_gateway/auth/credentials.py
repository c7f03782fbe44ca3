"""Reading a credential out of an ``Authorization`` header value."""

from __future__ import annotations

from maas_gateway.errors import AuthenticationError

__all__ = ["SCHEMES", "parse_authorization"]

# APIKEY is the origin system's scheme; Bearer is what the official OpenAI SDK sends.
SCHEMES = frozenset({"apikey", "bearer"})


def parse_authorization(value: str | None) -> str:
    """Return the credential in ``value`` or raise ``AuthenticationError`` saying what is wrong."""
    if not value:
        raise AuthenticationError(
            "No credentials were given. Send 'Authorization: Bearer <key>' or 'Authorization: APIKEY <key>'.",
            code="missing_api_key",
        )
    scheme, _, credential = value.strip().partition(" ")
    if scheme.lower() not in SCHEMES:
        raise AuthenticationError(
            "The Authorization header uses an unsupported scheme; use 'Bearer <key>' or 'APIKEY <key>'.",
            code="invalid_authorization_scheme",
        )
    credential = credential.strip()
    if not credential:
        raise AuthenticationError(
            "The Authorization header names a scheme but carries no key.", code="missing_api_key"
        )
    return credential
