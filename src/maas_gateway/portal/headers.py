"""Security headers on every portal response, and the portal switched off by configuration.

The policy allows scripts, styles and images from the gateway itself only: no inline script, no inline
event handler, no inline style attribute, no framing by any site, forms posting only back here.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import Message

from maas_gateway.config.portal_settings import PortalSettings
from maas_gateway.errors import NotFoundError
from maas_gateway.http.asgi import ASGIApp, Receive, Scope, Send, send_error

__all__ = ["CONTENT_SECURITY_POLICY", "PortalGate"]

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_NO_STORE = (b"cache-control", b"no-store")  # pages show personal data: never kept by a shared cache


class PortalGate:
    """Answers 404 (as the API does) while ``portal.enabled`` is false, and adds the headers otherwise."""

    def __init__(self, app: ASGIApp, settings: Callable[[], PortalSettings]) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.settings().enabled:
            await send_error(
                send, NotFoundError(f"There is no endpoint at {scope['path']}.", code="unknown_url")
            )
            return
        static = scope["path"].startswith("/portal/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), *_HEADERS]
                if not static:
                    headers.append(_NO_STORE)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
