"""Reserve mode's arithmetic: a bound on a request's prompt, its worst case, and the output cap that fits.

Plain numbers in, plain numbers out, so every endpoint (whatever its output field is called:
``max_tokens``, ``max_completion_tokens``, ``max_output_tokens``) uses the same policy.

The prompt bound is conservative by construction for text: a token is at least one UTF-8 byte for the
tokenizers of common models, so a prompt's bytes bound its tokens; the chat template adds at most
``TEMPLATE_TOKENS_PER_REQUEST`` plus ``TEMPLATE_TOKENS_PER_MESSAGE`` per message. Tool and function
definitions, tool calls and response formats are rendered into the prompt by the template, often
pretty-printed: each byte of their compact JSON is at most one token, and the indentation and line breaks
a template adds at most one more each, hence twice their bytes. Non-text parts (images, audio, files)
have no byte bound (an image's tokens are not its bytes); each counts ``media_part_tokens``, a
configured allowance that is an estimate, not a bound (docs/limits.md says so).
"""

from __future__ import annotations

from collections.abc import Sequence

from maas_gateway.config.schema import LimitUnit
from maas_gateway.limits.charge import TokenCharge
from maas_gateway.pricing import PriceVersion

__all__ = [
    "TEMPLATE_TOKENS_PER_MESSAGE",
    "TEMPLATE_TOKENS_PER_REQUEST",
    "largest_fitting_output",
    "prompt_bound",
    "worst_case",
]

TEMPLATE_TOKENS_PER_MESSAGE = 8
TEMPLATE_TOKENS_PER_REQUEST = 16


def prompt_bound(
    *, utf8_bytes: int, messages: int, structure_bytes: int, media_parts: int, media_part_tokens: int
) -> int:
    """The most tokens a prompt can be, before the model's multiplier."""
    return (
        utf8_bytes
        + TEMPLATE_TOKENS_PER_REQUEST
        + TEMPLATE_TOKENS_PER_MESSAGE * messages
        + 2 * structure_bytes
        + media_parts * media_part_tokens
    )


def worst_case(
    prompt: int, output_cap: int, choices: int, multiplier: float, price: PriceVersion | None = None
) -> TokenCharge:
    """The most a request can cost: its prompt once, and up to ``output_cap`` tokens for each of its
    ``choices`` answers (``n``, or ``best_of`` when larger: the backend generates them all); in money at
    ``price``, the prompt all uncached (the dearer input price, as cached input never costs more)."""
    return TokenCharge.of(prompt, output_cap * max(1, choices), multiplier, price)


def largest_fitting_output(
    *,
    prompt: int,
    choices: int,
    multiplier: float,
    room: Sequence[tuple[LimitUnit, int]],
    at_most: int,
    price: PriceVersion | None = None,
) -> int:
    """The largest output cap, up to ``at_most``, whose worst case fits every ``(unit, units left)``;
    ``-1`` when even no output at all would not fit (the prompt alone is too big)."""

    def fits(cap: int) -> bool:
        charge = worst_case(prompt, cap, choices, multiplier, price)
        return all(charge.in_unit(unit) <= left for unit, left in room)

    if not fits(0):
        return -1
    low, high = 0, max(0, at_most)  # fits(low) holds; find the largest cap that fits
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low
