"""Reserve mode at the request's edge: measure the request, reserve its worst case, and lower its output cap
in the body to what the reservation holds.

The arithmetic (prompt bound, worst case, the cap that fits) is the limits package's
(limits/reservation.py) and takes plain numbers; this module only reads them off the request and writes
the granted cap back. Which field carries the cap is the request's ``output_cap_field``.
"""

from __future__ import annotations

from maas_gateway.limits import Admission, Limiter, TierPolicy
from maas_gateway.limits.reservation import prompt_bound
from maas_gateway.pricing import PriceVersion
from maas_gateway.proxy.body_parser import ParsedBody
from maas_gateway.proxy.schemas import GenerationRequest
from maas_gateway.routing import ModelRoute

__all__ = ["CLAMPED_HEADER", "reserve"]

CLAMPED_HEADER = "x-maas-max-tokens-clamped"


async def reserve(
    limiter: Limiter,
    policy: TierPolicy,
    parsed: ParsedBody,
    request: GenerationRequest,
    *,
    user: str,
    tier: str,
    model: ModelRoute,
    output_field: str | None,
    price: PriceVersion | None = None,
    team: str | None = None,
    key_id: str | None = None,
) -> tuple[Admission, str | None]:
    """The admission, and the ``x-maas-max-tokens-clamped`` value (``"1024 -> 300"``: the cap the
    request would have had, then the cap forwarded) when the output cap was lowered to what remains.

    ``output_field`` is the endpoint's output-cap field (``max_tokens``, ``max_output_tokens``), ``None``
    for endpoints without output to reserve or lower (embeddings, rerank, audio). ``price`` is the model's
    price version for the request (cost limits reserve the worst case in money); ``team`` and ``key_id``
    bring their own limits.
    """
    generates = output_field is not None
    size = parsed.prompt()
    prompt = prompt_bound(
        utf8_bytes=size.utf8_bytes,
        messages=size.messages,
        structure_bytes=size.structure_bytes,
        media_parts=size.media_parts,
        media_part_tokens=policy.media_part_tokens,
    )
    asked = request.output_cap
    cap = (asked or policy.reserve_default_max_tokens) if generates else 0
    admission = await limiter.reserve(
        user,
        tier,
        model.name,
        prompt=prompt,
        output_cap=cap,
        # A batch of prompts (completions) gets its n answers for every prompt.
        choices=request.choices * size.prompts if generates else 1,
        multiplier=model.token_multiplier,
        price=price,
        team=team,
        key_id=key_id,
    )
    granted = admission.output_cap
    if not generates or granted is None or granted == asked:
        return admission, None
    # The reservation only holds if the backend stops there: every cap field the request set says so.
    parsed.set(request.output_cap_field, granted)
    if request.max_tokens is not None:
        parsed.set("max_tokens", granted)
    return admission, f"{cap} -> {granted}" if granted < cap else None
