"""Security headers on every portal response, a bound on form bodies, and the portal switched off.

The policy allows scripts, styles and images from the gateway itself only: no inline script, no inline
event handler, no inline style attribute, no framing by any site, forms posting only back here.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import Message

from maas_gateway.config.portal_settings import PortalSettings
from maas_gateway.errors import NotFoundError
from maas_gateway.http.asgi import ASGIApp, Receive, Scope, Send, request_header, send_error, send_response

__all__ = ["CONTENT_SECURITY_POLICY", "MAX_FORM_BYTES", "FormTooLarge", "PortalGate"]


class FormTooLarge(Exception):
    """A request body passed ``MAX_FORM_BYTES`` while it was being read (the app shows a 413 page)."""


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
# The portal's forms are small; a larger body is refused before it is parsed (the form parser keeps an
# url-encoded body in memory).
MAX_FORM_BYTES = 64 * 1024
_TOO_LARGE = b"<!doctype html><title>Too large</title><p>This form is larger than the portal accepts.</p>"


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

        declared = request_header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_FORM_BYTES):
            await send_response(with_headers, 413, _TOO_LARGE, content_type=b"text/html; charset=utf-8")
            return
        received = 0

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > MAX_FORM_BYTES:
                raise FormTooLarge
            return message

        await self.app(scope, bounded, with_headers)
