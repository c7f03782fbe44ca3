"""One sign-in attempt at an identity provider, kept in the browser between the start and the callback.

Each attempt gets fresh random values: ``state`` (binds the callback to this browser), ``nonce`` (binds the
ID token to this attempt) and the PKCE ``verifier`` (only its S256 ``challenge`` leaves for the provider).
They travel in a short-lived cookie (``LOGIN_STATE_COOKIE``: HttpOnly, SameSite=Lax, ``/portal``), not on
the server: the callback may reach another replica, and nothing needs storing for an attempt that is never
finished. The cookie is not signed on purpose: every value in it is either a random secret that must
match what comes back from the provider (``state``) or from the signed ID token (``nonce``), or is checked
again at the callback (the issuer must be configured, ``next`` must be a portal path), so an edited
cookie can only make its own sign-in fail (docs/decisions.md). The callback deletes it, so it is used once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import asdict, dataclass

import orjson

__all__ = ["LOGIN_STATE_LIFETIME", "LoginState", "pkce_challenge"]

LOGIN_STATE_LIFETIME = 600  # seconds from "Sign in with ..." to the callback: time to type a password
_MAX_COOKIE = 3000  # a real one is about 500 bytes; anything larger is not ours


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of ``verifier`` (RFC 7636 4.2): base64url of its SHA-256, unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class LoginState:
    issuer: str  # the issuer URL the attempt went to
    redirect_uri: str  # sent again, identically, with the code
    next_url: str  # where to go after signing in (a portal path; checked again at the callback)
    state: str
    nonce: str
    verifier: str  # PKCE code verifier: 43 characters of base64url (256 random bits)
    started_at: float

    @classmethod
    def new(cls, issuer: str, redirect_uri: str, next_url: str, now: float) -> LoginState:
        return cls(
            issuer,
            redirect_uri,
            next_url,
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(32),
            started_at=now,
        )

    @property
    def challenge(self) -> str:
        return pkce_challenge(self.verifier)

    def expired(self, now: float) -> bool:
        return not 0 <= now - self.started_at <= LOGIN_STATE_LIFETIME

    def to_cookie(self) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(asdict(self))).decode("ascii")

    @classmethod
    def from_cookie(cls, value: str | None) -> LoginState | None:
        """The state in a cookie; ``None`` when there is none or it is not one of ours."""
        if not value or len(value) > _MAX_COOKIE:
            return None
        try:
            data = orjson.loads(base64.urlsafe_b64decode(value.encode("ascii")))
        except (binascii.Error, ValueError, UnicodeError):
            return None
        if not isinstance(data, dict) or set(data) != set(cls.__dataclass_fields__):
            return None
        texts = [data[name] for name in cls.__dataclass_fields__ if name != "started_at"]
        started = data["started_at"]
        if not all(isinstance(text, str) and text for text in texts):
            return None
        if not isinstance(started, int | float) or isinstance(started, bool):
            return None
        return cls(**data)
