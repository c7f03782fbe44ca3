"""Versioned per-model prices, and money as integer micro-units of one configured currency."""

from maas_gateway.pricing.money import format_money, to_micros
from maas_gateway.pricing.schedule import PriceSchedule, PriceVersion

__all__ = ["PriceSchedule", "PriceVersion", "format_money", "to_micros"]
