"""Configuration: the YAML file's schema, its loader and the built-in demo."""

from maas_gateway.config.durations import format_duration, parse_duration
from maas_gateway.config.loader import (
    ConfigError,
    demo_config,
    demo_config_text,
    load_config,
    parse_config,
)
from maas_gateway.config.schema import (
    APIKeyConfig,
    GatewayConfig,
    LimitConfig,
    LimitsSettings,
    LimitUnit,
    ModelConfig,
    ServerSettings,
    TierConfig,
    UserConfig,
)

__all__ = [
    "APIKeyConfig",
    "ConfigError",
    "GatewayConfig",
    "LimitConfig",
    "LimitUnit",
    "LimitsSettings",
    "ModelConfig",
    "ServerSettings",
    "TierConfig",
    "UserConfig",
    "demo_config",
    "demo_config_text",
    "format_duration",
    "load_config",
    "parse_config",
    "parse_duration",
]
