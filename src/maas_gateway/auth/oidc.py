"""OIDC bearer tokens (JWTs) in, identities out: issuer choice, signature and claim checks, tier mapping.

The issuer is chosen by the token's unverified ``iss``; only that issuer's published keys and allowed
algorithms can then verify it, so a token cannot pick its own key or downgrade to ``none`` or HMAC. Every
failure is a 401 with a code naming the check that failed; a valid user in no mapped group is a 403.
Tokens never appear in errors or logs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Collection, Mapping
from typing import Any

import jwt
import orjson
from jwt import exceptions as jwt_errors

from maas_gateway.auth.identity import Identity
from maas_gateway.auth.jwks import JWKSCache
from maas_gateway.config.schema import OIDCIssuer, OIDCSettings
from maas_gateway.errors import AuthenticationError, PermissionDeniedError

__all__ = [
    "OIDCVerifier",
    "groups_of",
    "identity_from_claims",
    "looks_like_jwt",
    "no_tier_error",
    "tier_for",
]

_BASE64URL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_SHOWN = 100  # at most this much of a token-supplied value goes into an error message


def looks_like_jwt(credential: str) -> bool:
    """Three base64url segments, the first an encoded JSON object naming an ``alg``.

    The signature may be empty so that unsigned (``alg: none``) tokens reach the verifier and are
    refused as such, rather than being looked up as API keys.
    """
    parts = credential.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        return False
    if not all(set(part.encode("ascii", "replace")) <= _BASE64URL for part in parts):
        return False
    try:
        header = orjson.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(header, dict) and "alg" in header


def groups_of(claims: Mapping[str, Any], claim: str) -> frozenset[str]:
    """The user's groups from ``claim``: a list of names or one name; dots reach into nested objects."""
    value: Any = claims.get(claim)
    if value is None and "." in claim:
        value = claims
        for part in claim.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list):
        return frozenset(item for item in value if isinstance(item, str))
    return frozenset()


def tier_for(issuer: OIDCIssuer, groups: Collection[str]) -> str | None:
    """The tier of the first group in ``group_tiers`` order that the user is in, else the default tier."""
    for group, tier in issuer.group_tiers.items():
        if group in groups:
            return tier
    return issuer.default_tier


def no_tier_error(user: str) -> PermissionDeniedError:
    return PermissionDeniedError(
        f"The user '{user[:_SHOWN]}' is in no group that maps to a tier, and the issuer has no default tier.",
        code="no_tier",
    )


def identity_from_claims(issuer: OIDCIssuer, claims: Mapping[str, Any]) -> Identity:
    """The identity verified ``claims`` describe, its user in the issuer's namespace.

    ``tier`` is what the groups give, or ``""`` when no group maps to a tier: an administrator's or the
    configuration's override may still give one (``UserPolicy``), else the caller is refused.
    """
    name = claims.get(issuer.user_claim)
    if not isinstance(name, str) or not name:
        raise AuthenticationError(
            f"The token lacks the '{issuer.user_claim}' claim that names the user.", code="invalid_token"
        )
    namespace = issuer.user_namespace
    user = f"{namespace}:{name}" if namespace else name
    groups = groups_of(claims, issuer.groups_claim)
    tier = tier_for(issuer, groups) or ""
    names = (claims.get(name) for name in issuer.name_claims)
    display_name = next((name for name in names if isinstance(name, str) and name), None)
    subject = str(claims.get("sub", user))
    digest = hashlib.sha256(f"{issuer.issuer}\n{subject}".encode()).hexdigest()
    return Identity(
        user=user,
        tier=tier,
        key_id="jwt_" + digest[:12],
        source="oidc",
        display_name=display_name,
        is_admin=any(group in groups for group in issuer.admin_groups),
    )


class OIDCVerifier:
    """Verifies JWTs from the configured issuers; call ``aclose`` when done (it owns an HTTP client)."""

    def __init__(self, settings: OIDCSettings, keys: JWKSCache | None = None) -> None:
        self.settings = settings
        self.keys = keys or JWKSCache.from_settings(settings)
        self._issuers = {issuer.issuer: issuer for issuer in settings.issuers}

    async def verify(self, token: str) -> Identity:
        header, unverified = _unverified(token)
        issuer = self._issuer(unverified)
        alg, key = await self._signing_key(issuer, header)
        claims = _decode(token, key, alg, issuer, issuer.audience, self.settings.clock_skew)
        identity = identity_from_claims(issuer, claims)
        expires = claims.get("exp")
        identity.expires_at = float(expires) if isinstance(expires, int | float) else None
        return identity

    async def id_token_claims(self, token: str, issuer: OIDCIssuer, client_id: str) -> dict[str, Any]:
        """The claims of an ID token that ``issuer`` issued to the client ``client_id`` (the portal's
        sign-in), checked as API tokens are (signature by the issuer's published keys, algorithm, ``iss``,
        ``exp``), but with ``client_id`` as the audience and, when there are several, as ``azp``
        (OpenID Connect Core 3.1.3.7). The caller checks the ``nonce``."""
        header, unverified = _unverified(token)
        if unverified.get("iss") != issuer.issuer:
            raise AuthenticationError(
                f"The ID token was not issued by '{issuer.issuer}', the provider this sign-in went to.",
                code="invalid_issuer",
            )
        alg, key = await self._signing_key(issuer, header)
        claims = _decode(token, key, alg, issuer, client_id, self.settings.clock_skew)
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != client_id:
            raise AuthenticationError(
                f"The ID token names several audiences but was not issued to '{client_id}' (its 'azp').",
                code="invalid_audience",
            )
        return claims

    async def _signing_key(self, issuer: OIDCIssuer, header: Mapping[str, Any]) -> tuple[str, jwt.PyJWK]:
        """The algorithm and key that may verify a token of ``issuer`` with ``header``: only algorithms the
        issuer allows, only keys it publishes."""
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in issuer.algorithms:
            shown = alg[:_SHOWN] if isinstance(alg, str) else "no algorithm"
            raise AuthenticationError(
                f"The token is signed with '{shown}', which this gateway does not accept from its issuer; "
                f"accepted: {', '.join(issuer.algorithms)}.",
                code="unsupported_algorithm",
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise _malformed()
        key = await self.keys.key(issuer, kid, alg)
        if key is None:
            named = f"with key '{kid[:_SHOWN]}'" if kid is not None else "without a key id"
            raise AuthenticationError(
                f"The token is signed {named}, which does not match any of the issuer's current "
                "signing keys.",
                code="unknown_key",
            )
        return alg, key.for_algorithm(alg)

    async def aclose(self) -> None:
        await self.keys.aclose()

    def _issuer(self, claims: Mapping[str, Any]) -> OIDCIssuer:
        iss = claims.get("iss")
        if not isinstance(iss, str):
            raise AuthenticationError("The token names no issuer (no 'iss' claim).", code="invalid_issuer")
        issuer = self._issuers.get(iss)
        if issuer is None:
            raise AuthenticationError(
                f"The token was issued by '{iss[:_SHOWN]}', which this gateway does not trust.",
                code="invalid_issuer",
            )
        return issuer


def _malformed() -> AuthenticationError:
    return AuthenticationError(
        "The token is malformed: it is not a signed JWT with a JSON header and payload.",
        code="invalid_token",
    )


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt_errors.PyJWTError:
        raise _malformed() from None
    return header, claims


def _decode(
    token: str, key: jwt.PyJWK, alg: str, issuer: OIDCIssuer, audience: str | list[str], leeway: float
) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=audience,
            issuer=issuer.issuer,
            leeway=leeway,
            options={"require": ["exp", "iss", "aud"]},
        )
    except jwt_errors.ExpiredSignatureError:
        raise AuthenticationError(
            "The token has expired; get a new one from the identity provider.", code="token_expired"
        ) from None
    except jwt_errors.ImmatureSignatureError:
        raise AuthenticationError(
            "The token is not valid yet: its 'nbf' or 'iat' time is in the future.",
            code="token_not_yet_valid",
        ) from None
    except jwt_errors.InvalidAudienceError:
        accepted = audience if isinstance(audience, str) else ", ".join(audience)
        raise AuthenticationError(
            f"The token is meant for another audience; this gateway accepts tokens for '{accepted}'.",
            code="invalid_audience",
        ) from None
    except jwt_errors.InvalidIssuerError:
        raise AuthenticationError(
            f"The token's issuer does not match '{issuer.issuer}'.", code="invalid_issuer"
        ) from None
    except jwt_errors.MissingRequiredClaimError as exc:
        raise AuthenticationError(
            f"The token lacks the required '{exc.claim}' claim.", code="invalid_token"
        ) from None
    except jwt_errors.InvalidSignatureError:
        raise AuthenticationError(
            "The token's signature does not verify with the issuer's key: "
            "the token was altered or signed by someone else.",
            code="invalid_signature",
        ) from None
    except jwt_errors.InvalidAlgorithmError:
        raise AuthenticationError(
            f"The token's algorithm '{alg}' does not fit the issuer's key.", code="unsupported_algorithm"
        ) from None
    except jwt_errors.PyJWTError:
        raise AuthenticationError(
            "The token is malformed: a claim such as 'exp', 'nbf', 'iat' or 'aud' has the wrong type.",
            code="invalid_token",
        ) from None
    return claims
