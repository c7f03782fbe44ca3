"""Reading a credential out of an ``Authorization`` header value, or an ``x-api-key`` header.

Anthropic's clients send their key as ``x-api-key``; the inference API accepts it there too (neither
header ever reaches a backend: proxy/header_names.py). ``Authorization`` wins when both are sent.
"""

from __future__ import annotations

from maas_gateway.errors import AuthenticationError

__all__ = ["SCHEMES", "parse_authorization", "request_credential"]

# APIKEY is the origin system's scheme; Bearer is what the official OpenAI SDK sends.
SCHEMES = frozenset({"apikey", "bearer"})


def parse_authorization(value: str | None) -> str:
    """Return the credential in ``value`` or raise ``AuthenticationError`` saying what is wrong."""
    if not value:
        raise AuthenticationError(
            "No credentials were given. Send 'Authorization: Bearer <key>' or 'Authorization: APIKEY <key>'"
            " (or 'x-api-key: <key>' to the inference API).",
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


def request_credential(authorization: str | None, api_key: str | None) -> str:
    """The credential of an inference request: ``Authorization``'s, else a non-empty ``x-api-key``."""
    if authorization is None and api_key is not None:
        key = api_key.strip()
        if not key:
            raise AuthenticationError("The x-api-key header is empty.", code="missing_api_key")
        return key
    return parse_authorization(authorization)
