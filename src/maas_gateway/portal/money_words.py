"""Money as the portal writes it: the amount and the configured currency's code, never a guessed symbol.

Budgets count micro-units of ``pricing.currency`` (integers); usage reports hold amounts of it (floats).
Either way the code follows the amount ("0.0123 EUR"), so a page never shows dollars for euros.
"""

from __future__ import annotations

from maas_gateway.pricing.money import MICROS

__all__ = ["amount_text", "micros_text"]


def micros_text(micros: int, currency: str) -> str:
    """``1,234.50 EUR``: at least two decimals, more while they are not zeros (up to six), as budgets are
    written in the configuration (``limit: 0.25``) and counted exactly."""
    sign = "-" if micros < 0 else ""
    whole, fraction = divmod(abs(micros), MICROS)
    digits = f"{fraction:06d}".rstrip("0").ljust(2, "0")
    return f"{sign}{whole:,}.{digits} {currency}"


def amount_text(amount: float, currency: str, places: int = 4) -> str:
    """``12.3400 USD`` for a usage report's amount, with ``places`` decimals."""
    return f"{amount:,.{places}f} {currency}"
