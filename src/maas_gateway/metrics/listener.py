"""The metrics listener: ``GET /metrics`` on an address of its own (``metrics.listen``).

Metrics name users and their usage, so they are served by default on a separate listener (loopback
unless configured) that no ingress routes to. On the API port they exist only with
``metrics.on_api_port: true``, and then only for the admin credential (see proxy/app.py).
"""

from __future__ import annotations

import logging

from maas_gateway.config.schema import MetricsSettings
from maas_gateway.errors import NotFoundError
from maas_gateway.http.asgi import Receive, Scope, Send, send_error
from maas_gateway.metrics.endpoint import MetricsEndpoint, Render
from maas_gateway.server import ServerSpec, bind

__all__ = ["MetricsApp", "listener_spec"]

logger = logging.getLogger("maas_gateway")


def listener_spec(settings: MetricsSettings, render: Render) -> ServerSpec:
    """The metrics listener, its socket bound now: a taken address raises ``ListenError`` before anything
    else starts."""
    host, port = settings.address
    sock = bind(host, port, "The metrics listener")
    logger.info("Metrics are served at http://%s/metrics.", settings.listen)
    return ServerSpec(MetricsApp(render), host, port, sock)


class MetricsApp:
    """The metrics listener: ``/metrics`` and nothing else (404 in OpenAI's error shape elsewhere)."""

    def __init__(self, render: Render) -> None:
        self.endpoint = MetricsEndpoint(render)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":
            path = scope["path"]
            if path == "/metrics":
                await self.endpoint(scope, receive, send)
            else:
                error = NotFoundError(
                    f"There is no endpoint at {path}; this listener serves only /metrics.", code="unknown_url"
                )
                await send_error(send, error)


async def _lifespan(receive: Receive, send: Send) -> None:
    """Nothing to start or stop: the values belong to the gateway (or to the workers' shared files)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
