"""Admin and self-service bodies are JSON, whatever Content-Type the client forgot to send.

``curl -d '{...}'`` sends ``application/x-www-form-urlencoded``; the model endpoints read JSON regardless,
so the admin app does too: a thin ASGI wrapper relabels a body with no Content-Type, or the form type,
as ``application/json`` before FastAPI reads it. A body that is then not a JSON object is a 400 saying
so (the admin app's validation handler). Other declared types are left alone and refused as before.
"""

from __future__ import annotations

from starlette.types import ASGIApp

from maas_gateway.http.asgi import Receive, Scope, Send

__all__ = ["JsonBodyByDefault"]

_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_FORM = b"application/x-www-form-urlencoded"
_JSON = (b"content-type", b"application/json")


class JsonBodyByDefault:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in _WITH_BODY:
            headers: list[tuple[bytes, bytes]] = scope["headers"]
            declared = [value for name, value in headers if name == b"content-type"]
            if not declared or declared[0].partition(b";")[0].strip().lower() == _FORM:
                kept = [(name, value) for name, value in headers if name != b"content-type"]
                scope = {**scope, "headers": [*kept, _JSON]}
        await self.app(scope, receive, send)
