"""Signing in with a local account (a plain form that works without JavaScript) and signing out."""

from __future__ import annotations

from starlette.responses import Response

from maas_gateway.portal.context import PageContext, PageError
from maas_gateway.portal.cookies import SESSION_COOKIE, SIGN_IN_CSRF_COOKIE, forget, remember, safe_next
from maas_gateway.portal.navigation import Pages
from maas_gateway.portal.oidc.callback import portal_issuers

__all__ = ["pages"]

pages = Pages()

_WRONG = "The user name or the password is not right."
_MAX_NAME = 200


@pages.page("/sign-in", title="Sign in", section="public")
async def sign_in_form(context: PageContext) -> Response:
    if context.user is not None:
        return context.redirect(safe_next(context.request.query_params.get("next")))
    return _form(context, next_url=safe_next(context.request.query_params.get("next")))


@pages.page("/sign-in", title="Sign in", section="public", methods=("POST",))
async def sign_in(context: PageContext) -> Response:
    services = context.services
    form = await context.form()
    name = str(form.get("user") or "").strip()[:_MAX_NAME]
    password = str(form.get("password") or "")
    next_url = safe_next(str(form.get("next") or ""))
    address = services.address(context.request.scope)
    wait = services.sign_in_throttle.retry_after(name, address)
    if wait:
        seconds = int(wait) + 1
        raise PageError(
            429,
            "Too many attempts",
            "Too many failed sign-ins for this account or from your address. "
            f"Try again in {seconds} seconds.",
            headers={"Retry-After": str(seconds)},
        )
    account = await services.accounts.check_password(name, password) if name and password else None
    stored = await services.users.get(name, services.clock()) if account is not None else None
    if account is None or stored is None:
        services.sign_in_throttle.failed(name, address)
        return _form(context, next_url=next_url, user=name, error=_WRONG, status=401)
    if stored.disabled:
        message = "This account is disabled, or waits for an administrator's approval."
        return _form(context, next_url=next_url, user=name, error=message, status=403)
    old = context.request.cookies.get(SESSION_COOKIE)
    if old:
        await services.sessions.end(old)  # a sign-in always starts a fresh session (no fixation)
    token, _ = await services.sessions.start(account.user)
    response = context.redirect(next_url)
    secure = services.secure(context.request.scope)
    remember(response, SESSION_COOKIE, token, secure=secure)
    forget(response, SIGN_IN_CSRF_COOKIE, secure=secure)
    return response


@pages.page("/sign-out", title="Sign out", methods=("POST",), nav=False)
async def sign_out(context: PageContext) -> Response:
    token = context.request.cookies.get(SESSION_COOKIE)
    if token:
        await context.services.sessions.end(token)
    response = context.redirect("/portal/sign-in")
    forget(response, SESSION_COOKIE, secure=context.services.secure(context.request.scope))
    return response


def _form(
    context: PageContext, *, next_url: str, user: str = "", error: str | None = None, status: int = 200
) -> Response:
    registration = context.services.settings().self_registration.enabled
    providers = [
        (issuer.issuer, issuer.portal_label) for issuer in portal_issuers(context.services.config().oidc)
    ]
    return context.render(
        "sign_in.html",
        status=status,
        next_url=next_url,
        user_name=user,
        error=error,
        title="Sign in",
        registration=registration,
        providers=providers,
    )
