"""maas-gateway: an OpenAI-compatible front door that turns model servers into a governed service."""

__version__ = "0.1.0"

__all__ = ["__version__"]
