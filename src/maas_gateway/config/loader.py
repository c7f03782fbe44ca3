"""Reading a configuration file into a validated ``GatewayConfig``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from maas_gateway.config.schema import GatewayConfig

__all__ = ["ConfigError", "demo_config", "demo_config_text", "load_config", "parse_config"]


class ConfigError(Exception):
    """The configuration cannot be used; the message names the field and what is wrong."""


def demo_config_text() -> str:
    """The built-in demo configuration, with its comments (what `maas config example` prints)."""
    return resources.files("maas_gateway.config").joinpath("demo.yaml").read_text("utf-8")


def demo_config() -> GatewayConfig:
    return parse_config(yaml.safe_load(demo_config_text()), source="the built-in demo configuration")


def load_config(path: str | Path) -> GatewayConfig:
    """Load and validate a YAML file, raising ``ConfigError`` with a readable message."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read the configuration file {path}: {exc.strerror}.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"The configuration file {path} is not UTF-8 text.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"The configuration file {path} is not valid YAML: {exc}") from None
    return parse_config(data, source=str(path))


def parse_config(data: Any, *, source: str = "the configuration") -> GatewayConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must be a YAML mapping with at least `models` and `tiers`.")
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def _describe(exc: ValidationError, source: str) -> str:
    lines = [f"{source} is invalid:"]
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"  - {where}: {message}")
    return "\n".join(lines)
