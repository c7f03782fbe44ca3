"""The playground: chat with one of my models from the browser, through the gateway's own API.

The page's script streams ``/v1/chat/completions`` like any client, with a short-lived ephemeral key
made for it on request (``POST /portal/playground/key``: the session and its CSRF token in the
``X-CSRF-Token`` header), never with one of my long-lived keys. That key is mine (the calls are charged
to me and count against my limits), lives ``PLAYGROUND_LIFETIME`` at most, allows the one model chosen,
cannot create or rotate keys (``key_policy``), and is listed on the Keys page marked "playground".
"""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from maas_gateway.errors import GatewayError
from maas_gateway.portal.caller import caller
from maas_gateway.portal.context import PageContext
from maas_gateway.portal.navigation import Pages

__all__ = ["PLAYGROUND_KEY_NAME", "PLAYGROUND_LIFETIME", "pages"]

pages = Pages()

PLAYGROUND_LIFETIME = 600.0  # seconds; capped by keys.ephemeral_max_lifetime
PLAYGROUND_KEY_NAME = "playground"


@pages.page("/playground", title="Playground", order=50)
async def playground(context: PageContext) -> Response:
    identity = caller(context.me)
    models = [route.name for route in context.services.router().visible_to(identity)]
    return context.render("playground.html", title="Playground", models=models)


@pages.page("/playground/key", title="Playground key", methods=("POST",), nav=False)
async def playground_key(context: PageContext) -> Response:
    """A fresh ephemeral key for the chosen model, as JSON for the page's script (never cached)."""
    me = context.me
    if me.tier is None:
        return _error(403, "Your account has no tier at the moment, so it cannot use the API.")
    form = await context.form()
    model = str(form.get("model") or "")
    if not model:
        return _error(400, "Choose a model.")
    lifetime = min(PLAYGROUND_LIFETIME, context.services.keys.settings.ephemeral_max_lifetime)
    try:
        plaintext, key = await context.services.own_keys.create(
            caller(me), name=PLAYGROUND_KEY_NAME, models=[model], lifetime=lifetime, ephemeral=True
        )
    except GatewayError as exc:
        return _error(exc.status_code, exc.message)
    # Every portal response is Cache-Control: no-store (PortalGate), this one included.
    return JSONResponse({"key": plaintext, "id": key.key_id, "model": model, "expires_at": key.expires_at})


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status_code=status)
