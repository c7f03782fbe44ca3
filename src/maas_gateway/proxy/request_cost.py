"""What a request used when its answer did not say: an estimate, or nothing, by the endpoint's row.

(What it may cost before it runs, for reserve mode, is ``proxy/reserve.py``: the endpoint's
``max_tokens_field`` names the output cap it reserves and may lower.)
"""

from __future__ import annotations

from maas_gateway.proxy.body_parser import ParsedBody
from maas_gateway.proxy.endpoints import Endpoint
from maas_gateway.proxy.exchange import Usage

__all__ = ["unreported_usage"]


def unreported_usage(endpoint: Endpoint, parsed: ParsedBody, chunks: int, chars: int) -> Usage:
    """The usage of an answer that reported none: an estimate from the prompt and the text generated,
    or nothing for endpoints that are not charged in tokens or whose cost cannot be guessed."""
    if not endpoint.token_charged or not endpoint.estimate_missing:
        return Usage(0, 0)
    return Usage(parsed.prompt().estimated_tokens, max(chunks, -(-chars // 4)), estimated=True)
