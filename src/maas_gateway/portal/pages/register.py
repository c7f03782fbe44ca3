"""Self-registration (``portal.self_registration``): visitors create their own account.

Off by default (then /portal/register is a 404 page). A new account gets the configured tier, or, with
``approval``, starts disabled until an administrator enables the user. A name that is already a user (in
the users table or the configuration file) is refused, so nobody can claim an existing user's usage and
keys. Every attempt counts against the address's hourly allowance, successful or not.
"""

from __future__ import annotations

import re
import time

from starlette.responses import Response

from maas_gateway.portal.context import PageContext, PageError
from maas_gateway.portal.navigation import Pages
from maas_gateway.portal.passwords import password_problem

__all__ = ["pages"]

pages = Pages()

# Lower case only: "Dev1" beside "dev1" would be two users that people cannot tell apart. No ":", which
# names identity-provider users.
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


def _offered(context: PageContext) -> None:
    if not context.services.settings().self_registration.enabled:
        raise PageError(404, "Page not found", "There is no page at this address.")


@pages.page("/register", title="Create an account", section="public")
async def register_form(context: PageContext) -> Response:
    _offered(context)
    return _form(context)


@pages.page("/register", title="Create an account", section="public", methods=("POST",))
async def register(context: PageContext) -> Response:
    _offered(context)
    services = context.services
    settings = services.settings().self_registration
    form = await context.form()
    name = str(form.get("user") or "").strip()
    display_name = str(form.get("display_name") or "").strip()[:200] or None
    password = str(form.get("password") or "")
    address = services.address(context.request.scope)
    now = time.monotonic()
    wait = services.registrations.retry_after(address, now)
    if wait:
        seconds = int(wait) + 1
        raise PageError(
            429,
            "Too many attempts",
            f"Too many accounts were asked for from your address. Try again in {seconds} seconds.",
            headers={"Retry-After": str(seconds)},
        )
    services.registrations.failed(address, now)  # every attempt counts, successful or not
    problem = None
    if not _NAME.match(name):
        problem = (
            "A user name has 2 to 64 characters: lower-case letters, digits, '.', '_' and '-', "
            "starting with a letter or digit."
        )
    elif password != str(form.get("password_again") or ""):
        problem = "The two passwords are not the same."
    else:
        problem = password_problem(password)
    if problem is None:
        taken = services.config().configures(name) or await services.keys.repository.get_user(name)
        if taken or not await services.accounts.create(
            name, password, tier=settings.tier, display_name=display_name, disabled=settings.approval
        ):
            problem = "This user name is taken; choose another."
    if problem is not None:
        return _form(context, user=name, display_name=display_name or "", error=problem, status=400)
    return context.render(
        "registered.html", title="Account created", user_name=name, approval=settings.approval
    )


def _form(
    context: PageContext,
    *,
    user: str = "",
    display_name: str = "",
    error: str | None = None,
    status: int = 200,
) -> Response:
    return context.render(
        "register.html",
        status=status,
        title="Create an account",
        user_name=user,
        display_name=display_name,
        error=error,
    )
