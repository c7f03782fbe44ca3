"""Checking an identity provider's answer to one sign-in attempt, down to a verified identity.

In order, each failure a ``SignInFailed`` with a sentence: the browser must hold the attempt's login state
(else it expired, was used, or began elsewhere), the provider must not report an error, the returned
``state`` must equal the attempt's (constant time), the attempt must be younger than
``LOGIN_STATE_LIFETIME`` and go to an issuer still configured for the portal; then the code is exchanged
(with the PKCE verifier), the ID token verified like any bearer token of that issuer but with the portal's
client as audience, and its ``nonce`` must equal the attempt's.
"""

from __future__ import annotations

import hmac

from maas_gateway.auth.identity import Identity
from maas_gateway.auth.oidc import OIDCVerifier, identity_from_claims
from maas_gateway.config.schema import OIDCIssuer, OIDCSettings
from maas_gateway.errors import GatewayError
from maas_gateway.portal.oidc.login_state import LoginState
from maas_gateway.portal.oidc.provider import IdentityProviders, SignInFailed

__all__ = ["portal_issuers", "verified_identity"]

_SHOWN = 60


def portal_issuers(settings: OIDCSettings) -> list[OIDCIssuer]:
    """The issuers offered on the sign-in page: those with a ``portal_client_id``."""
    return [issuer for issuer in settings.issuers if issuer.portal_client_id]


def _same(sent: str | None, expected: str) -> bool:
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())


async def verified_identity(
    login: LoginState | None,
    *,
    state: str | None,
    code: str | None,
    error: str | None,
    settings: OIDCSettings,
    verifier: OIDCVerifier | None,
    providers: IdentityProviders,
    now: float,
) -> Identity:
    """Who the provider says signed in, once every check of this attempt passed."""
    if login is None:
        raise SignInFailed(
            "This sign-in is not one this browser started, or it was finished already or took too long. "
            "Start again from the sign-in page."
        )
    issuer = next((found for found in portal_issuers(settings) if found.issuer == login.issuer), None)
    if issuer is None or issuer.portal_client_id is None or verifier is None:
        raise SignInFailed("The identity provider of this sign-in is no longer offered here.")
    if error is not None:
        raise SignInFailed(
            f"{issuer.portal_label} did not sign you in (it answered '{error[:_SHOWN]}'). "
            "Start again from the sign-in page."
        )
    if not _same(state, login.state):
        raise SignInFailed(
            "This answer from the identity provider does not belong to the sign-in this browser started, "
            "so nobody was signed in. Start again from the sign-in page."
        )
    if login.expired(now):
        raise SignInFailed("This sign-in took too long. Start again from the sign-in page.")
    if not code:
        raise SignInFailed(f"{issuer.portal_label} answered without a code, so nobody was signed in.")
    id_token = await providers.exchange(issuer, settings, code, login.redirect_uri, login.verifier)
    try:
        claims = await verifier.id_token_claims(id_token, issuer, issuer.portal_client_id)
    except GatewayError as exc:
        raise SignInFailed(f"The ID token from {issuer.portal_label} was refused: {exc}") from None
    if not _same(claims.get("nonce") if isinstance(claims.get("nonce"), str) else None, login.nonce):
        raise SignInFailed(
            f"The ID token from {issuer.portal_label} was not issued for this sign-in (its nonce differs), "
            "so nobody was signed in."
        )
    try:
        return identity_from_claims(issuer, claims)
    except GatewayError as exc:
        raise SignInFailed(f"The ID token from {issuer.portal_label} was refused: {exc}") from None
