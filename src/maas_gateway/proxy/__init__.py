"""The proxy: the HTTP edge of the gateway (the ASGI app, its request pipeline, forwarding, SSE)."""

from maas_gateway.proxy.app import GatewayApp

__all__ = ["GatewayApp"]
