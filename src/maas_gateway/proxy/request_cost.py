"""What a request may cost before it runs (reserve mode), and what it used when the answer did not say.

Reserve mode (the tier's ``reserve``) admits a request against its worst case: the prompt's bound plus
its output cap, read from the endpoint's own field (``Endpoint.max_tokens_field``: ``max_tokens``,
``max_output_tokens``), or the tier's default put in that field when the request set none.
"""

from __future__ import annotations

from maas_gateway.limits import TokenCharge
from maas_gateway.proxy.body_parser import ParsedBody
from maas_gateway.proxy.endpoints import Endpoint
from maas_gateway.proxy.exchange import Usage
from maas_gateway.proxy.schemas import GenerationRequest
from maas_gateway.routing import ModelRoute

__all__ = ["unreported_usage", "worst_case"]

# Per-message and per-request allowance for chat-template tokens when bounding a prompt's size.
_TEMPLATE_TOKENS_PER_MESSAGE = 8
_TEMPLATE_TOKENS_PER_REQUEST = 16


def unreported_usage(endpoint: Endpoint, parsed: ParsedBody, chunks: int, chars: int) -> Usage:
    """The usage of an answer that reported none: an estimate from the prompt and the text generated,
    or nothing for endpoints that are not charged in tokens or whose cost cannot be guessed."""
    if not endpoint.token_charged or not endpoint.estimate_missing:
        return Usage(0, 0)
    return Usage(parsed.prompt().estimated_tokens, max(chunks, -(-chars // 4)), estimated=True)


def worst_case(
    parsed: ParsedBody,
    request: GenerationRequest,
    budget: int | None,
    model: ModelRoute,
    field: str | None,
) -> TokenCharge | None:
    """An upper bound on what a request can cost, for tiers that reserve before forwarding.

    A token is at least one byte for the tokenizers of common models, so the prompt's UTF-8 length plus
    a chat-template allowance bounds its tokens; the output is bounded by ``max_tokens``.
    """
    if budget is None:
        return None
    size = parsed.prompt()
    prompt = size.utf8_bytes + _TEMPLATE_TOKENS_PER_REQUEST + _TEMPLATE_TOKENS_PER_MESSAGE * size.messages
    output = request.output_cap or (parsed.edits.get(field) if field else None) or 0
    return TokenCharge.of(prompt, int(output), model.token_multiplier)
