"""``GET``/``DELETE /v1/responses/{id}`` (and ``POST .../cancel``, ``GET .../input_items``), sent to
the backend that created the response, for the user who created it.

These read or drop what a backend stored; they generate nothing, so they count against request limits
and are charged no tokens. An id the gateway did not see answered to this user is a 404 that never
reaches a backend (proxy/response_owners.py says what holds across processes).
"""

from __future__ import annotations

import contextlib

from maas_gateway.errors import (
    GatewayError,
    MethodNotAllowedError,
    NotFoundError,
    RateLimitError,
    ServiceUnavailableError,
)
from maas_gateway.http.asgi import Scope, Send, send_response
from maas_gateway.limits import TokenCharge, rate_limit_headers
from maas_gateway.limits.breaker import STORAGE_ERRORS
from maas_gateway.proxy.exchange import Exchange, Usage
from maas_gateway.proxy.forward import read_answer
from maas_gateway.proxy.public_name import public_name
from maas_gateway.proxy.response_owners import ResponseOwners
from maas_gateway.proxy.snapshot import Snapshot
from maas_gateway.proxy.upstream_request import upstream_headers
from maas_gateway.upstream import UpstreamRequest, UpstreamTransport

__all__ = ["STORED_RESPONSE", "serve_stored_response"]

STORED_RESPONSE = "/v1/responses/{id}"  # the endpoint as the ledger and metrics name it
_ACTIONS = {"": ("GET", "DELETE"), "cancel": ("POST",), "input_items": ("GET",)}
_SHOWN_ID_CHARS = 100
_LONGEST_ID = 256


async def serve_stored_response(
    transport: UpstreamTransport,
    owners: ResponseOwners,
    snapshot: Snapshot,
    scope: Scope,
    send: Send,
    exchange: Exchange,
    api_path: str,
) -> None:
    identity = exchange.identity
    assert identity is not None, "identified by the caller"
    response_id, _, action = api_path.removeprefix("/v1/responses/").partition("/")
    allowed = _ACTIONS.get(action)
    if allowed is None or not response_id:
        raise NotFoundError(f"There is no endpoint at {api_path[:200]}.", code="unknown_url")
    method = exchange.method
    if method not in allowed:
        raise MethodNotAllowedError(
            f"The method {method} is not allowed on {STORED_RESPONSE}"
            + (f"/{action}" if action else "")
            + f"; use {' or '.join(allowed)}.",
            allowed=allowed,
        )
    router = snapshot.router
    if len(response_id) > _LONGEST_ID:
        owner = None  # no backend makes ids this long; not worth a look-up
    else:
        try:
            owner = await owners.find(response_id)
        except STORAGE_ERRORS:
            raise ServiceUnavailableError(
                "The gateway cannot look up stored responses right now; try again shortly."
            ) from None
    model = router.get(owner.model) if owner is not None else None
    if owner is None or model is None or owner.user != identity.user or not router.allows(identity, model):
        raise NotFoundError(
            f"No response with the id '{response_id[:_SHOWN_ID_CHARS]}' was created for you through "
            "this gateway (or it has been deleted).",
            code="response_not_found",
        )
    backends = snapshot.backends.get(model.name)
    if backends is None or all(b.url != owner.backend_url for b in backends.pool.backends):
        raise NotFoundError(
            f"The backend that stored the response '{response_id[:_SHOWN_ID_CHARS]}' is no longer "
            f"among the model '{model.name}''s backends.",
            code="response_not_found",
        )
    exchange.model = exchange.served_model = model.name
    limiter = snapshot.limiter
    admission = None
    if limiter is not None:
        try:
            admission = await limiter.admit(
                identity.user, identity.tier, model.name, team=identity.team, key_id=identity.key_id
            )
        except RateLimitError:
            exchange.rate_limited = True
            raise
    exchange.admitted = True
    query = scope.get("query_string") or b""
    url = owner.backend_url + api_path + ("?" + query.decode("latin-1") if query else "")
    headers = upstream_headers(scope, identity, model.name, exchange.request_id, snapshot.trusted_proxies)
    renamed = public_name(model.upstream_model, model.name)
    try:
        response = await transport.send(UpstreamRequest(method, url, headers, b""))
        try:
            answer = await read_answer(response, renamed, lambda _payload: None)
        finally:
            response.close()
    except Exception as error:
        if not isinstance(error, GatewayError) or error.status_code >= 500:
            exchange.failed = True  # the backend failed: the request is not counted
            if admission is not None and limiter is not None:
                await limiter.refund(admission)
        raise
    exchange.usage = Usage(0, 0)  # what is read back was charged when it was generated
    if method == "DELETE" and answer.status < 300:
        # The backend has deleted it; an entry left behind when the store fails only answers 404 later.
        with contextlib.suppress(*STORAGE_ERRORS):
            await owners.forget(response_id)
    own = [
        (b"x-request-id", exchange.request_id.encode()),
        (b"x-maas-served-model", model.name.encode()),
    ]
    if admission is not None and admission.limited:
        limits = rate_limit_headers(admission.counters, admission.values, consumed=TokenCharge(0, 0))
        own += [(name.encode(), value.encode()) for name, value in limits]
    exchange.status = answer.status
    await send_response(send, answer.status, answer.body, answer.headers + own)
