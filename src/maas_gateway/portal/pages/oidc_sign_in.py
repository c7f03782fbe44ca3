"""Signing in through an identity provider: "Sign in with ..." starts an attempt, the callback ends it.

The start (a link on the sign-in page) sends the browser to the provider with a fresh
``state``, ``nonce`` and PKCE challenge, kept in a short-lived cookie; the callback checks the answer
(``portal/oidc/callback.py``), brings the user's row and account up to date and starts an ordinary portal
session. A failed callback is an error page, starts no session and counts against the address's sign-in
allowance; the login cookie is deleted whatever happens, so an attempt is used at most once.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlencode

from starlette.responses import RedirectResponse, Response

from maas_gateway.portal.context import PageContext, PageError
from maas_gateway.portal.cookies import (
    LOGIN_STATE_COOKIE,
    SESSION_COOKIE,
    SIGN_IN_CSRF_COOKIE,
    forget,
    remember,
    safe_next,
)
from maas_gateway.portal.navigation import Pages
from maas_gateway.portal.oidc.accounts import provider_account
from maas_gateway.portal.oidc.callback import portal_issuers, verified_identity
from maas_gateway.portal.oidc.login_state import LOGIN_STATE_LIFETIME, LoginState
from maas_gateway.portal.oidc.provider import SignInFailed

__all__ = ["pages"]

logger = logging.getLogger("maas_gateway.portal")

pages = Pages()

CALLBACK_PATH = "/portal/auth/callback"
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


@pages.page("/auth/start", title="Sign in", section="public")
async def start(context: PageContext) -> Response:
    # A link, not a form: the portal's policy (form-action 'self') would stop a form's redirect to the
    # provider, and starting changes nothing here but the browser's own attempt (docs/decisions.md).
    services = context.services
    form = context.request.query_params
    chosen = str(form.get("issuer") or "")
    settings = services.config().oidc
    issuer = next((found for found in portal_issuers(settings) if found.issuer == chosen), None)
    if issuer is None or issuer.portal_client_id is None:
        raise PageError(
            400, "Unknown identity provider", "This gateway offers no sign-in with that provider."
        )
    redirect_uri = issuer.portal_redirect_uri or _callback_url(context)
    try:
        endpoints = await services.identity_providers.endpoints(issuer, settings)
        services.identity_providers.client_secret(issuer)  # a missing secret fails here, not after a password
    except SignInFailed as failure:
        raise PageError(failure.status, "Sign-in failed", failure.message) from None
    login = LoginState.new(
        issuer.issuer, redirect_uri, safe_next(str(form.get("next") or "")), services.clock()
    )
    query = urlencode(
        {
            "response_type": "code",
            "client_id": issuer.portal_client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid profile email",
            "state": login.state,
            "nonce": login.nonce,
            "code_challenge": login.challenge,
            "code_challenge_method": "S256",
        }
    )
    separator = "&" if "?" in endpoints.authorization else "?"
    response = RedirectResponse(endpoints.authorization + separator + query, status_code=303)
    secure = services.secure(context.request.scope)
    remember(response, LOGIN_STATE_COOKIE, login.to_cookie(), secure=secure, max_age=LOGIN_STATE_LIFETIME)
    return response


@pages.page("/auth/callback", title="Signing in", section="public")
async def callback(context: PageContext) -> Response:
    services = context.services
    request = context.request
    secure = services.secure(request.scope)
    address = services.address(request.scope)
    wait = services.sign_in_throttle.address_retry_after(address)
    if wait:
        seconds = int(wait) + 1
        message = f"Too many failed sign-ins from your address. Try again in {seconds} seconds."
        return _failed(context, 429, "Too many attempts", message, {"Retry-After": str(seconds)})
    login = LoginState.from_cookie(request.cookies.get(LOGIN_STATE_COOKIE))
    query = request.query_params
    try:
        identity = await verified_identity(
            login,
            state=query.get("state"),
            code=query.get("code"),
            error=query.get("error"),
            settings=services.config().oidc,
            verifier=services.oidc(),
            providers=services.identity_providers,
            now=services.clock(),
        )
    except SignInFailed as failure:
        services.sign_in_throttle.address_failed(address)
        logger.info("A portal sign-in through an identity provider failed from %s: %s", address, failure)
        return _failed(context, failure.status, "Sign-in failed", failure.message, {})
    assert login is not None
    now = services.clock()
    stored = await provider_account(identity, services.users, services.accounts.store, now)
    if stored is None or stored.disabled:
        message = "This account is disabled, or waits for an administrator's approval."
        return _failed(context, 403, "Account disabled", message, {})
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await services.sessions.end(old)  # a sign-in always starts a fresh session (no fixation)
    token, _ = await services.sessions.start(identity.user)
    response = context.redirect(safe_next(login.next_url))
    remember(response, SESSION_COOKIE, token, secure=secure)
    forget(response, SIGN_IN_CSRF_COOKIE, secure=secure)
    forget(response, LOGIN_STATE_COOKIE, secure=secure)
    return response


def _failed(context: PageContext, status: int, title: str, message: str, headers: dict[str, str]) -> Response:
    response = context.renderer.error(status, title, message, headers)
    forget(response, LOGIN_STATE_COOKIE, secure=context.services.secure(context.request.scope))
    return response


def _callback_url(context: PageContext) -> str:
    """The callback on the address the browser used (for issuers without ``portal_redirect_uri``)."""
    host = context.request.headers.get("host", "")
    if not _HOST.match(host):
        raise PageError(400, "Bad request", "This request names no usable host, so no sign-in can start.")
    scheme = "https" if context.services.secure(context.request.scope) else "http"
    return f"{scheme}://{host}{CALLBACK_PATH}"
