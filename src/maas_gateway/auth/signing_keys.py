"""Published signing keys: which key type fits which algorithm, choosing a token's key, reading a JWKS.

Symmetric (``oct``) keys are never kept: only asymmetric signatures prove who issued a token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from jwt import PyJWK
from jwt.exceptions import PyJWTError

__all__ = ["KeySetError", "SigningKey", "compatible", "read_key_set", "select_key"]

logger = logging.getLogger("maas_gateway.auth")

# Which key types (and curves) can verify which algorithms; HMAC is deliberately absent.
_KEY_TYPES: dict[str, tuple[str, str | None]] = {
    **dict.fromkeys(("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"), ("RSA", None)),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", None),
}


class KeySetError(ValueError):
    """A JWKS document has no key list; the message is a sentence fragment naming where."""


@dataclass
class SigningKey:
    """One published public key, with the verifier objects built for it so far (one per algorithm)."""

    kid: str | None
    jwk: dict[str, Any]
    _built: dict[str, PyJWK] = field(default_factory=dict)

    def for_algorithm(self, alg: str) -> PyJWK:
        built = self._built.get(alg)
        if built is None:
            built = self._built[alg] = PyJWK(self.jwk, algorithm=alg)
        return built


def compatible(jwk: dict[str, Any], alg: str) -> bool:
    """Whether ``jwk`` can verify signatures made with ``alg`` (never true for HMAC or ``none``)."""
    expected = _KEY_TYPES.get(alg)
    if expected is None or jwk.get("use", "sig") != "sig":
        return False
    kty, crv = expected
    if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
        return False
    return jwk.get("alg") in (None, alg)


def select_key(keys: list[SigningKey], kid: str | None, alg: str) -> SigningKey | None:
    """The key a token with header ``kid``/``alg`` must be verified with, or ``None``.

    With a ``kid`` the key must carry that id; without one (some providers omit it) the issuer must
    publish exactly one key that fits the algorithm.
    """
    if kid is not None:
        return next((key for key in keys if key.kid == kid and compatible(key.jwk, alg)), None)
    candidates = [key for key in keys if compatible(key.jwk, alg)]
    return candidates[0] if len(candidates) == 1 else None


def read_key_set(document: dict[str, Any], url: str) -> list[SigningKey]:
    """The usable asymmetric keys of the JWKS ``document`` fetched from ``url``; unusable ones are logged."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise KeySetError(f"the key set at {url} has no 'keys' list")
    keys = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") not in ("RSA", "EC", "OKP"):
            continue  # symmetric or unknown key types never verify tokens here
        kid = entry.get("kid")
        key = SigningKey(kid if isinstance(kid, str) else None, entry)
        algorithm = _default_algorithm(entry)
        try:
            if algorithm is None:
                raise ValueError("no supported algorithm fits the key")
            key.for_algorithm(algorithm)
        except (PyJWTError, ValueError, TypeError):
            logger.warning("Ignoring an unusable key (kid %r) published at %s.", key.kid, url)
            continue
        keys.append(key)
    return keys


def _default_algorithm(jwk: dict[str, Any]) -> str | None:
    declared = jwk.get("alg")
    if isinstance(declared, str):
        return declared if declared in _KEY_TYPES else None
    fitting = (
        alg for alg, (kty, crv) in _KEY_TYPES.items() if kty == jwk["kty"] and crv in (None, jwk.get("crv"))
    )
    return next(fitting, None)
