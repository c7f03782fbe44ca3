"""The proxy: the ASGI gateway, its request pipeline and the upstream transport."""

from maas_gateway.proxy.app import GatewayApp
from maas_gateway.proxy.upstream import AiohttpTransport, UpstreamTransport

__all__ = ["AiohttpTransport", "GatewayApp", "UpstreamTransport"]
