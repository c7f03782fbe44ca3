"""One generation request through the gateway: authenticate, validate, route, limit, forward, charge.

Each step is a plain unit (``auth``, ``routing``, ``limits``, ``upstream``); this module only puts them in
order and makes sure every admitted request is settled exactly once, whatever happens. The pipeline holds
only what outlives a reload (the upstream transport, the failure throttle, the body parser); each request
brings the configuration ``Snapshot`` it started under.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from maas_gateway.auth.credentials import request_credential
from maas_gateway.auth.failure_gate import FailureGate
from maas_gateway.auth.identity import Identity
from maas_gateway.capacity import CapacityGuard, Slot
from maas_gateway.errors import (
    AuthenticationError,
    BackendBusyError,
    GatewayError,
    NotFoundError,
    RateLimitError,
)
from maas_gateway.http.asgi import (
    Receive,
    Scope,
    Send,
    read_body,
    request_header,
    send_response,
)
from maas_gateway.http.forwarded import client_address
from maas_gateway.limits import Admission, Limiter, TokenCharge, rate_limit_headers
from maas_gateway.proxy.affinity import affinity_key
from maas_gateway.proxy.body_parser import BodyParser, ParsedBody
from maas_gateway.proxy.dispatch import RequestFor, dispatch, dispatch_pinned, report_outcome
from maas_gateway.proxy.endpoints import Endpoint, StreamEvents
from maas_gateway.proxy.exchange import Exchange, Usage
from maas_gateway.proxy.forward import end_stream, passthrough_headers, read_answer, relay_stream
from maas_gateway.proxy.multipart import read_form
from maas_gateway.proxy.public_name import public_name
from maas_gateway.proxy.request_cost import unreported_usage
from maas_gateway.proxy.reserve import CLAMPED_HEADER, reserve
from maas_gateway.proxy.response_affinity import holder, remember
from maas_gateway.proxy.response_owners import MemoryResponseOwners, ResponseOwners
from maas_gateway.proxy.schemas import OpenRequest, ResponsesRequest
from maas_gateway.proxy.snapshot import Snapshot
from maas_gateway.proxy.upstream_request import upstream_headers
from maas_gateway.routing import ModelRoute
from maas_gateway.upstream import UpstreamRequest, UpstreamTransport

__all__ = ["Pipeline"]


@dataclass(frozen=True, slots=True)
class Pipeline:
    transport: UpstreamTransport
    failures: FailureGate
    bodies: BodyParser = field(default_factory=BodyParser)
    responses: ResponseOwners = field(default_factory=MemoryResponseOwners)

    async def identify(self, snapshot: Snapshot, scope: Scope) -> Identity:
        """The caller, unless their address is throttled for failed attempts (429, checked first)."""
        address = client_address(scope, snapshot.trusted_proxies)
        self.failures.check(address)
        authorization = request_header(scope, b"authorization")
        # x-api-key is looked for only without Authorization: one scan of the headers for most requests.
        api_key = request_header(scope, b"x-api-key") if authorization is None else None
        credential = request_credential(authorization, api_key)
        try:
            return await snapshot.authenticator.authenticate(credential)
        except AuthenticationError:
            self.failures.failed(address)  # a presented credential was wrong: one attempt spent
            raise

    async def generate(
        self,
        snapshot: Snapshot,
        scope: Scope,
        receive: Receive,
        send: Send,
        exchange: Exchange,
        endpoint: Endpoint,
        prefix: str | None,
    ) -> None:
        exchange.endpoint = endpoint.path
        identity = await self.identify(snapshot, scope)
        exchange.identity = identity
        multipart = endpoint.body == "multipart"
        if multipart:
            form = await read_form(scope, receive, snapshot.max_body_bytes)
            raw, parsed = form.raw, form.parsed
        else:
            raw = await read_body(scope, receive, snapshot.max_body_bytes)
            parsed = await self.bodies.parse(raw, endpoint.schema)
        request = parsed.request
        router = snapshot.router
        model = router.resolve(host=request_header(scope, b"host"), prefix=prefix, requested=request.model)
        router.authorize(identity, model)
        if endpoint.schema is OpenRequest and endpoint.path not in model.extra_paths:
            raise NotFoundError(f"The model '{model.name}' offers no endpoint at {endpoint.path}.")
        exchange.model = model.name
        pinned = None  # the backend a continued conversation must go to
        if isinstance(request, ResponsesRequest) and request.previous_response_id is not None:
            pinned = await holder(self.responses, request.previous_response_id, identity, model)
        stream = bool(request.stream) and endpoint.streams is not None
        exchange.stream = stream
        ask_usage = stream and endpoint.stream_options  # the backend's stream is to report usage

        admission = None
        limiter = snapshot.limiter
        if limiter is not None:
            try:
                # Only a token-charged endpoint reserves: tokenize and the like are counted by request.
                policy = limiter.reserving(identity.user, identity.tier) if endpoint.token_charged else None
                if policy is None:
                    admission = await limiter.admit(
                        identity.user, identity.tier, model.name, team=identity.team, key_id=identity.key_id
                    )
                else:
                    admission, exchange.output_clamped = await reserve(
                        limiter,
                        policy,
                        parsed,
                        request,
                        user=identity.user,
                        tier=identity.tier,
                        model=model,
                        output_field=endpoint.max_tokens_field,
                        price=model.price_at(exchange.created_at),
                        team=identity.team,
                        key_id=identity.key_id,
                    )
            except RateLimitError:
                exchange.rate_limited = True
                raise
        exchange.admitted = True
        edited = bool(parsed.edits)
        content_type = form.content_type if multipart else "application/json"
        bodies: dict[str, bytes] = {}
        trusted = snapshot.trusted_proxies

        async def request_for(route: ModelRoute, base_url: str) -> UpstreamRequest:
            """The request for a backend of ``route`` (a fallback's body names its own served name)."""
            exchange.served_model = route.name  # what the answer, or the error, says served it
            served = route.upstream_model
            served_body = bodies.get(served)
            if served_body is None:
                if multipart:
                    served_body = form.for_model(served)
                else:
                    served_body = await self.bodies.upstream_body(
                        raw, parsed, served, ask_usage, changed=True
                    )
                bodies[served] = served_body
            headers = upstream_headers(
                scope, identity, route.name, exchange.request_id, trusted, content_type
            )
            return UpstreamRequest("POST", base_url + exchange.endpoint, headers, served_body)

        slot = None
        try:
            # Inside the try: a body that cannot be re-encoded (a 400) still gives the reservation back.
            if multipart:
                bodies[model.upstream_model] = form.for_model(model.upstream_model)
            else:
                bodies[model.upstream_model] = await self.bodies.upstream_body(
                    raw, parsed, model.upstream_model, ask_usage, changed=edited
                )
            if snapshot.capacity is not None:
                slot = await _capacity_slot(snapshot.capacity, exchange, identity, model)
            await self._forward(
                snapshot, receive, send, exchange, endpoint, model, request_for, parsed, admission, pinned
            )
        except Exception as error:
            # The gateway or a backend failed, not the caller: nothing is charged, not even the request.
            exchange.failed = exchange.usage is None and _not_the_callers_fault(error)
            raise
        finally:
            try:
                if slot is not None:  # the answer has ended (a stream's too): the slot and its tokens
                    await slot.release(exchange.usage.total_tokens if exchange.usage else 0)
            finally:
                if exchange.usage is None and admission is not None:
                    assert limiter is not None
                    if exchange.failed:  # the fleet or a backend failed (a full fleet's 503 too)
                        await limiter.refund(admission)
                    elif admission.reserved is not None:
                        # Nothing was generated (the backend refused the request): give the reservation back.
                        await limiter.settle(admission, TokenCharge(0, 0))

    async def _forward(
        self,
        snapshot: Snapshot,
        receive: Receive,
        send: Send,
        exchange: Exchange,
        endpoint: Endpoint,
        model: ModelRoute,
        request_for: RequestFor,
        parsed: ParsedBody,
        admission: Admission | None,
        pinned: str | None,
    ) -> None:
        identity = exchange.identity
        assert identity is not None
        if pinned is not None:
            delivery = await dispatch_pinned(self.transport, snapshot, model, pinned, request_for)
        else:
            key = affinity_key(parsed.data, model.affinity_chars) if model.affinity_chars else None
            delivery = await dispatch(self.transport, snapshot, identity, model, key, request_for)
        response, lease = delivery.response, delivery.lease
        exchange.backend = lease.backend.url  # for the ledger; its password is masked off the hot path
        served = delivery.served  # a fallback model when the requested one had no backend available
        renamed = public_name(served.upstream_model, served.name)
        try:
            own = [
                (b"x-request-id", exchange.request_id.encode()),
                (b"x-maas-served-model", delivery.served.name.encode()),
            ]
            if exchange.output_clamped is not None:
                own.append((CLAMPED_HEADER.encode(), exchange.output_clamped.encode()))
            # The headers are looked at only when a stream was asked for (most answers are not streams).
            if exchange.stream and response.status == 200 and _event_stream(response.headers):
                limit_headers = _encode(self._headers(admission, None, None))
                exchange.status = response.status
                exchange.response_started = True
                options = parsed.request.stream_options or {}
                result = await relay_stream(
                    response,
                    send,
                    receive,
                    passthrough_headers(response.headers) + own + limit_headers,
                    client_wants_usage=options.get("include_usage") is True,
                    renamed=renamed,
                    kind=endpoint.streams or StreamEvents.OPENAI,
                    errors=endpoint.errors,
                )
                report_outcome(lease, result.broken_off)
                exchange.client_disconnected = result.client_disconnected
                if result.broken_off is not None:
                    exchange.error_code = result.broken_off.code  # the access log shows what went wrong
                    exchange.broken = True
                if result.first_event_at is not None:
                    exchange.time_to_first_token = result.first_event_at - exchange.started
                if result.response_id is not None:
                    await remember(self.responses, result.response_id, identity, served, delivery.lease)
                usage = result.usage
                if usage is None or not endpoint.token_charged:
                    usage = unreported_usage(
                        endpoint, parsed, result.generated_chunks, result.generated_chars
                    )
                try:
                    await self._charge(snapshot.limiter, exchange, admission, model, usage)
                finally:
                    await end_stream(send)
                return
            try:
                answer = await read_answer(response, renamed, endpoint.usage, json_only=endpoint.json_answers)
            except Exception as error:
                report_outcome(lease, error)
                raise
            report_outcome(lease, None)
            if answer.response_id is not None and endpoint.streams is StreamEvents.RESPONSE:
                await remember(self.responses, answer.response_id, identity, served, lease)
            usage = answer.usage
            if usage is None or not endpoint.token_charged:
                usage = unreported_usage(endpoint, parsed, 0, answer.output_chars)
            values, charge = await self._charge(snapshot.limiter, exchange, admission, model, usage)
            limit_headers = _encode(self._headers(admission, values, charge))
            exchange.status = answer.status
            await send_response(
                send, answer.status, answer.body, answer.headers + own + limit_headers, answer.content_type
            )
        finally:
            response.close()  # a no-op once the answer was read to its end; frees the connection otherwise
            lease.release()  # the backend has one request fewer in flight

    @staticmethod
    async def _charge(
        limiter: Limiter | None,
        exchange: Exchange,
        admission: Admission | None,
        model: ModelRoute,
        usage: Usage,
    ) -> tuple[tuple[int, ...] | None, TokenCharge]:
        exchange.usage = usage
        charge = TokenCharge.of(
            usage.prompt_tokens,
            usage.completion_tokens,
            model.token_multiplier,
            model.price_at(exchange.created_at),  # the version the ledger records too
            usage.cached_tokens,
        )
        exchange.charged_tokens = charge.total
        if admission is None or limiter is None:
            return None, charge
        return await limiter.settle(admission, charge), charge

    @staticmethod
    def _headers(
        admission: Admission | None, values: tuple[int, ...] | None, consumed: TokenCharge | None
    ) -> list[tuple[str, str]]:
        if admission is None or not admission.limited:
            return []
        return rate_limit_headers(admission.counters, values or admission.values, consumed=consumed)


def _not_the_callers_fault(error: Exception) -> bool:
    """Whether a request that ended with ``error`` failed at the gateway or a backend: a 5xx, a backend at
    capacity, or anything unexpected; a 4xx of the caller's own (a backend's 400) is the caller's."""
    if isinstance(error, BackendBusyError):
        return True
    return not isinstance(error, GatewayError) or error.status_code >= 500


async def _capacity_slot(
    capacity: CapacityGuard, exchange: Exchange, identity: Identity, model: ModelRoute
) -> Slot | None:
    """A slot of the model's capacity and the user's concurrency, after waiting in line if need be; a
    request turned away (429 or 503, with Retry-After) was not admitted to any backend."""
    try:
        return await capacity.acquire(identity.user, identity.tier, model.name)
    except GatewayError as exc:
        exchange.admitted = False
        exchange.rate_limited = isinstance(exc, RateLimitError)
        raise


def _event_stream(headers: Sequence[tuple[str, str]]) -> bool:
    return any(name == "content-type" and value.startswith("text/event-stream") for name, value in headers)


def _encode(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.encode(), value.encode()) for name, value in headers]
