"""One access-log line per admin API and self-service call: who did what, with which answer.

A thin ASGI wrapper around the admin app times the call, reads the answer's status and writes the line;
the app's authentication dependencies fill in who the caller was (``caller_of(scope)``), and its error
handlers the error code. The line names the admin key or the user and key id, never a credential, and
the path without its query string.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.types import ASGIApp, Message

from maas_gateway.auth.identity import Identity
from maas_gateway.http.asgi import Receive, Scope, Send
from maas_gateway.http.forwarded import client_address
from maas_gateway.http.request_ids import new_request_id

__all__ = ["AdminCall", "AdminCallLog", "LineWriter", "caller_of", "loggable_path"]

_SCOPE_KEY = "maas_gateway.admin_call"


class LineWriter(Protocol):
    """Where the lines go: the gateway's access log (``proxy.access_log.AccessLog``)."""

    @property
    def enabled(self) -> bool: ...

    def write(self, line: dict[str, Any]) -> None: ...


_REDACTED = "[redacted]"


@dataclass(slots=True)
class AdminCall:
    """What the line about one call says; filled in while the call runs."""

    request_id: str
    client: str
    status: int = 0
    auth: str | None = None  # admin_key, config_key, key or oidc; None while no credential was accepted
    admin: bool = False  # the call used admin authority (the admin key or an admin group's token)
    user: str | None = None
    tier: str | None = None
    key_id: str | None = None
    error: str | None = None

    def accept(self, identity: Identity, *, admin: bool = False) -> None:
        self.auth, self.admin = identity.source, admin
        self.user, self.tier, self.key_id = identity.user, identity.tier, identity.key_id

    def accept_admin_key(self) -> None:
        self.auth, self.admin = "admin_key", True


def caller_of(scope: Scope) -> AdminCall:
    """The record of the running call (a detached one when the app runs without ``AdminCallLog``)."""
    call = scope.get(_SCOPE_KEY)
    return call if isinstance(call, AdminCall) else AdminCall("", client_address(scope))


def loggable_path(path: str) -> str:
    """``path`` with any segment in the shape of a lifecycle key (``maas_…``) replaced.

    Key ids (``key_…``) are public; a whole key pasted into a URL by mistake must not reach the log.
    """
    if "maas_" not in path:
        return path
    return "/".join(_REDACTED if part.startswith("maas_") else part for part in path.split("/"))


class AdminCallLog:
    """Wraps the admin app: an ``x-request-id`` on every answer and a line in the access log."""

    def __init__(
        self, app: ASGIApp, access_log: LineWriter, address: Callable[[Scope], str] = client_address
    ) -> None:
        self.app = app
        self.access_log = access_log
        self.address = address  # the client's address, trusting the same proxies as the throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        call = AdminCall(new_request_id(), self.address(scope))
        scope[_SCOPE_KEY] = call
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                call.status = message["status"]
                headers = [*message.get("headers", ()), (b"x-request-id", call.request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.access_log.enabled:
                self.access_log.write(_line(call, scope, time.perf_counter() - started))


def _line(call: AdminCall, scope: Scope, seconds: float) -> dict[str, Any]:
    return {
        "event": "admin_call",
        "request_id": call.request_id,
        "method": scope["method"],
        "path": loggable_path(scope["path"]),
        "status": call.status,
        "client": call.client,
        "auth": call.auth,
        "admin": call.admin,
        "user": call.user,
        "tier": call.tier,
        "key_id": call.key_id,
        "error": call.error,
        "latency_ms": round(seconds * 1000, 3),
    }
