"""Signing in to the portal through an OpenID Connect provider: the authorization-code flow with PKCE."""

from __future__ import annotations

from maas_gateway.portal.oidc.provider import IdentityProviders, SignInFailed

__all__ = ["IdentityProviders", "SignInFailed"]
