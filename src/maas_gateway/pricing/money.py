"""Money as integers: millionths of the configured currency ("micro-units").

Limits count money in micro-units so that Redis and in-memory counters stay integers and add up exactly;
a price per million tokens is, conveniently, the price of one token in micro-units.
"""

from __future__ import annotations

__all__ = ["MICROS", "format_money", "to_micros"]

MICROS = 1_000_000
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def to_micros(amount: float) -> int:
    """``amount`` of the currency in micro-units, rounded to the nearest (5.00 -> 5,000,000)."""
    return round(amount * MICROS)


def format_money(micros: int, currency: str) -> str:
    """``$0.0123`` or ``0.0123 CHF``: at least two decimals, more while they are not zeros (up to six)."""
    sign = "-" if micros < 0 else ""
    whole, fraction = divmod(abs(micros), MICROS)
    digits = f"{fraction:06d}".rstrip("0")
    digits = digits.ljust(2, "0")
    amount = f"{whole:,}.{digits}"
    symbol = _SYMBOLS.get(currency)
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency}"
