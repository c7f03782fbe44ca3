"""Routing: from Host, path prefix and body model to a model and one of its backends."""

from maas_gateway.routing.route import ModelRoute
from maas_gateway.routing.router import Router

__all__ = ["ModelRoute", "Router"]
