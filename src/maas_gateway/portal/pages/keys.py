"""My API keys: create (the secret shown once), list, rotate with a grace period, revoke one or all.

Every change goes through ``OwnKeys``, as ``/v1/keys`` does: the models are the tier's, the lifetime at
most ``keys.max_lifetime``, and another user's key id is a 404 page. A secret appears only in the answer
to the POST that made it (never in a URL, never in a page that can be fetched again); every portal page
is ``Cache-Control: no-store``.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response

from maas_gateway.auth.key_repository import StoredKey
from maas_gateway.auth.own_keys import tier_models
from maas_gateway.config.durations import format_duration
from maas_gateway.errors import GatewayError, NotFoundError
from maas_gateway.portal.caller import caller
from maas_gateway.portal.context import PageContext, PageError
from maas_gateway.portal.navigation import Pages

__all__ = ["pages"]

pages = Pages()

_LIFETIMES = (86400.0, 7 * 86400.0, 30 * 86400.0, 90 * 86400.0, 365 * 86400.0)
GRACE_PERIODS = (0.0, 3600.0, 86400.0, 7 * 86400.0)  # what a rotation may keep the old key for
_LISTED = 200  # keys shown at most (a user has at most keys.max_keys_per_user active ones)
_MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class KeyRow:
    key: StoredKey
    state: str  # active, retiring, revoked, expired


def _state(key: StoredKey, now: float) -> str:
    if key.revoked_at is not None:
        return "retiring" if key.revoked_at > now else "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


def _label(seconds: float) -> str:
    """A choice as people say it: "7 days", "1 hour", "90 minutes"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return format_duration(seconds)


def _lifetimes(context: PageContext) -> list[tuple[float, str]]:
    """The expiries offered: the usual ones within ``keys.max_lifetime``, and the default and the cap."""
    settings = context.services.keys.settings
    choices = {seconds for seconds in _LIFETIMES if seconds <= settings.max_lifetime}
    choices |= {settings.default_lifetime, settings.max_lifetime}
    return [(seconds, _label(seconds)) for seconds in sorted(choices)]


async def _page(
    context: PageContext, *, error: str | None = None, name: str = "", status: int = 200
) -> Response:
    me = context.me
    services = context.services
    now = services.clock()
    found = await services.keys.list(owner=me.user, include_inactive=True, page_size=_LISTED)
    rows = [KeyRow(key, _state(key, now)) for key in reversed(found.keys)]  # newest first
    models = tier_models(services.config(), me.tier) if me.tier is not None else []
    return context.render(
        "keys.html",
        status=status,
        title="Keys",
        rows=rows,
        total=found.total,
        models=models,
        lifetimes=_lifetimes(context),
        default_lifetime=services.keys.settings.default_lifetime,
        grace_periods=[(seconds, _label(seconds)) for seconds in GRACE_PERIODS],
        error=error,
        name=name,
        now=now,
    )


@pages.page("/keys", title="Keys", order=20)
async def keys(context: PageContext) -> Response:
    return await _page(context)


@pages.page("/keys", title="Create a key", methods=("POST",), nav=False)
async def create(context: PageContext) -> Response:
    identity = caller(context.me)
    form = await context.form()
    name = str(form.get("name") or "").strip()
    models = [str(model) for model in form.getlist("models")]
    offered = {seconds for seconds, _ in _lifetimes(context)}
    lifetime = _number(str(form.get("lifetime") or ""))
    problem = None
    if not name or len(name) > _MAX_NAME:
        problem = f"Give the key a name of 1 to {_MAX_NAME} characters."
    elif not models:
        problem = "Choose at least one model the key may use."
    elif lifetime not in offered:
        problem = "Choose one of the expiries offered."
    if problem is not None:
        return await _page(context, error=problem, name=name[:_MAX_NAME], status=400)
    try:
        plaintext, key = await context.services.own_keys.create(
            identity, name=name, models=models, lifetime=lifetime
        )
    except GatewayError as exc:
        return await _page(context, error=exc.message, name=name, status=exc.status_code)
    return _secret(context, plaintext, key, title="Your new key")


@pages.page("/keys/rotate", title="Rotate a key", methods=("POST",), nav=False)
async def rotate(context: PageContext) -> Response:
    identity = caller(context.me)
    form = await context.form()
    grace = _number(str(form.get("grace") or ""))
    if grace not in GRACE_PERIODS:
        return await _page(context, error="Choose one of the grace periods offered.", status=400)
    try:
        plaintext, new, old = await context.services.own_keys.rotate(
            identity, str(form.get("key_id") or ""), grace=grace
        )
    except NotFoundError:
        raise _no_such_key() from None
    except GatewayError as exc:
        return await _page(context, error=exc.message, status=exc.status_code)
    return _secret(context, plaintext, new, title="Your rotated key", old=old)


@pages.page("/keys/revoke", title="Revoke a key", methods=("POST",), nav=False)
async def revoke(context: PageContext) -> Response:
    form = await context.form()
    try:
        await context.services.own_keys.revoke(caller(context.me), str(form.get("key_id") or ""))
    except NotFoundError:
        raise _no_such_key() from None
    return context.redirect("/portal/keys")


@pages.page("/keys/revoke-all", title="Revoke all keys", nav=False)
async def revoke_all_form(context: PageContext) -> Response:
    me = context.me
    found = await context.services.keys.list(owner=me.user, page_size=_LISTED)
    return context.render("keys_revoke_all.html", title="Revoke all keys", keys=found.keys)


@pages.page("/keys/revoke-all", title="Revoke all keys", methods=("POST",), nav=False)
async def revoke_all(context: PageContext) -> Response:
    await context.services.own_keys.revoke_all(caller(context.me))
    return context.redirect("/portal/keys")


def _secret(
    context: PageContext, plaintext: str, key: StoredKey, *, title: str, old: StoredKey | None = None
) -> Response:
    """The one page that shows a secret: the answer to the POST that created it."""
    return context.render("key_created.html", title=title, secret=plaintext, key=key, old=old)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _no_such_key() -> PageError:
    return PageError(404, "Key not found", "You have no key with this id.")
