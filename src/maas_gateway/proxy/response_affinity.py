"""Responses API requests that must reach one backend: the one that stored the response they name.

A ``POST /v1/responses`` with ``previous_response_id`` continues a conversation the model server keeps
in its own memory, so it goes to the backend that created that response, and only for the user who did
(another user's id, or one never seen, is a 404 that reaches no backend: a conversation cannot be
borrowed by guessing its id). Every response the gateway relays is remembered for that
(proxy/response_owners.py), and for ``GET``/``DELETE /v1/responses/{id}`` (proxy/stored_responses.py).
"""

from __future__ import annotations

import logging

from maas_gateway.auth.identity import Identity
from maas_gateway.balancing import Lease
from maas_gateway.errors import NotFoundError, ServiceUnavailableError
from maas_gateway.limits.breaker import STORAGE_ERRORS
from maas_gateway.proxy.response_owners import ResponseOwner, ResponseOwners
from maas_gateway.routing import ModelRoute

__all__ = ["holder", "remember"]

logger = logging.getLogger("maas_gateway")


async def holder(owners: ResponseOwners, response_id: str, identity: Identity, model: ModelRoute) -> str:
    """The URL of the backend that stored ``response_id``, if the response is the caller's and the
    model's; a 404 otherwise, and a 503 when the store cannot be asked."""
    try:
        owner = await owners.find(response_id)
    except STORAGE_ERRORS:
        raise ServiceUnavailableError(
            "The gateway cannot look up stored responses right now; try again shortly."
        ) from None
    if owner is None or owner.user != identity.user or owner.model != model.name:
        raise NotFoundError(
            f"No previous response with the id '{response_id[:100]}' was created for you with the "
            f"model '{model.name}' through this gateway.",
            code="previous_response_not_found",
            param="previous_response_id",
        )
    return owner.backend_url


async def remember(
    owners: ResponseOwners, response_id: str, identity: Identity, served: ModelRoute, lease: Lease
) -> None:
    """Note which backend holds a stored response, and whose it is. The answer is the client's whatever
    happens here: a store that failed only makes a later read 404."""
    owner = ResponseOwner(identity.user, served.name, lease.backend.url)
    try:
        await owners.remember(response_id, owner)
    except STORAGE_ERRORS:
        logger.warning("The owner of the stored response %s could not be recorded.", response_id)
