"""The application root: the one place that builds the gateway's parts and wires them together."""

from maas_gateway.application.root import Application

__all__ = ["Application"]
