"""Answering one request for ``GET /metrics``, on the metrics listener or, for the admin, the API port."""

from __future__ import annotations

from collections.abc import Callable

from maas_gateway.errors import GatewayError, MethodNotAllowedError
from maas_gateway.http.asgi import Receive, Scope, Send, send_error, send_response
from maas_gateway.metrics.gateway_metrics import CONTENT_TYPE

__all__ = ["Authorize", "MetricsEndpoint", "Render"]

Render = Callable[[], bytes]
# Raises a GatewayError (401, 403) unless the request carries the credential metrics need.
Authorize = Callable[[Scope], None]


class MetricsEndpoint:
    """Answer one request for ``/metrics``: GET only, after ``authorize`` when one is given."""

    def __init__(self, render: Render, authorize: Authorize | None = None) -> None:
        self.render = render
        self.authorize = authorize

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        try:
            if self.authorize is not None:  # first: without the credential, not even the methods show
                self.authorize(scope)
            if method != "GET":
                raise MethodNotAllowedError(
                    f"The method {method} is not allowed on /metrics; use GET.", allowed=("GET",)
                )
        except GatewayError as error:
            await send_error(send, error)
            return
        await send_response(send, 200, self.render(), content_type=CONTENT_TYPE.encode())
