"""Sending a request to one of its model's backends: the pick, one retry elsewhere, fallback models.

The first backend is the model's pool's pick; when none of its backends is available, each fallback
model the caller may use is tried in order; when none of those has one either, the pool picks among
all of its backends whatever their state (panic mode: health data can be wrong, and a request that may
succeed beats a certain 503).

A request is sent again, once, to another backend in two cases only, and only while the model's retry
budget allows: its connection could not be opened (nothing was sent, so it cannot run twice), or the
backend answered 429 (it is at capacity, which is not the caller's fault). Once a backend has started
answering otherwise, the request is never sent again. A 429 that cannot be retried is passed on with
the backend's ``Retry-After``. Every attempt tells the backend's health how it went; the caller reports
the outcome of the answer it reads, and releases the lease when the answer is over.

A backend at its ``max_in_flight`` is not picked. When the model's backends are all full (and no fallback
has room), the request waits for one of them to end a request, at most the model's queue timeout, and is
answered 503 ``capacity_exhausted`` if none does; it never overloads a backend, not even in panic mode.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from maas_gateway.auth.identity import Identity
from maas_gateway.balancing import FailureKind, Lease, ModelBackends, wait_for_room
from maas_gateway.errors import (
    BackendBusyError,
    BackendConnectError,
    BackendError,
    BackendTimeoutError,
    CapacityExhaustedError,
    NotFoundError,
)
from maas_gateway.proxy.forward import BackendStatusError
from maas_gateway.proxy.snapshot import Snapshot
from maas_gateway.routing import ModelRoute
from maas_gateway.upstream import UpstreamRequest, UpstreamResponse, UpstreamTransport

__all__ = ["Delivery", "RequestFor", "dispatch", "dispatch_pinned", "report_outcome"]

# The request for a model's backend at a base URL (its body names that model's served name).
RequestFor = Callable[[ModelRoute, str], Awaitable[UpstreamRequest]]


@dataclass(slots=True)  # per request: a frozen dataclass costs 4x as much to build
class Delivery:
    """A backend's answer (its head), the lease on that backend, and the model it serves."""

    response: UpstreamResponse
    lease: Lease
    served: ModelRoute  # the requested model, or the fallback that answered for it


async def dispatch(
    transport: UpstreamTransport,
    snapshot: Snapshot,
    identity: Identity,
    model: ModelRoute,
    affinity_key: str | None,
    request_for: RequestFor,
) -> Delivery:
    """Send the request to a backend; return once one answered with anything but a 429.

    Raises ``BackendConnectError`` when no connection could be made (and no retry was possible),
    ``BackendBusyError`` when the backends asked were at capacity, and the transport's errors.
    """
    backends = snapshot.backends[model.name]
    backends.retry_budget.record_request()
    picked = _first_pick(snapshot, identity, model, backends, affinity_key)
    if picked is None:
        picked = await _wait_for_room(snapshot, identity, model, backends, affinity_key)
    lease, served = picked
    retried = False
    while True:
        try:
            response = await transport.send(await request_for(served, lease.backend.url))
        except BackendConnectError:
            lease.failed(FailureKind.CONNECT)
            lease.release()
            again = None if retried else _retry_pick(snapshot, identity, model, lease, served, affinity_key)
            if again is None:
                raise
            backends.counts.retried("connect")
            lease, served, retried = again[0], again[1], True
            continue
        except BaseException as error:
            report_outcome(lease, error)
            lease.release()
            raise
        if response.status != 429:
            return Delivery(response, lease, served)
        lease.succeeded()  # at capacity, not broken: it answered, which is a success for its health
        retry_after = next((value for name, value in response.headers if name == "retry-after"), None)
        response.close()
        lease.release()
        again = None if retried else _retry_pick(snapshot, identity, model, lease, served, affinity_key)
        if again is None:
            raise BackendBusyError(
                f"The model '{model.name}' is at capacity; try again "
                + (f"in {retry_after} seconds." if retry_after and retry_after.isdigit() else "shortly."),
                retry_after=retry_after,
            )
        backends.counts.retried("busy")
        lease, served, retried = again[0], again[1], True


async def dispatch_pinned(
    transport: UpstreamTransport, snapshot: Snapshot, model: ModelRoute, url: str, request_for: RequestFor
) -> Delivery:
    """Send the request to the one backend at ``url``, which holds the state it continues (a previous
    response): no pick, no retry elsewhere, no fallback, since no other backend could answer it."""
    backend = next((b for b in snapshot.backends[model.name].pool.backends if b.url == url), None)
    if backend is None:
        raise NotFoundError(
            f"The backend that stored the previous response is no longer among the model '{model.name}''s "
            "backends.",
            code="previous_response_not_found",
            param="previous_response_id",
        )
    lease = Lease(backend)
    try:
        response = await transport.send(await request_for(model, url))
    except BaseException as error:
        report_outcome(lease, error)
        lease.release()
        raise
    if response.status == 429:
        lease.succeeded()
        retry_after = next((value for name, value in response.headers if name == "retry-after"), None)
        response.close()
        lease.release()
        raise BackendBusyError(
            f"The backend holding this conversation of the model '{model.name}' is at capacity; try again "
            "shortly.",
            retry_after=retry_after,
        )
    return Delivery(response, lease, model)


def report_outcome(lease: Lease, error: BaseException | None) -> None:
    """Tell the backend's health how its answer went: ``error`` is what reading it raised, if anything.

    A 5xx, a broken or silent connection, or an answer that is not one are failures; a backend's own
    4xx (the request's fault) and a whole answer are successes; anything else (the client left, the
    gateway failed) says nothing about the backend.
    """
    if error is None or isinstance(error, BackendStatusError):
        lease.succeeded()
    elif isinstance(error, BackendConnectError):
        lease.failed(FailureKind.CONNECT)
    elif isinstance(error, BackendError | BackendTimeoutError):
        lease.failed(FailureKind.SERVER_ERROR)


def _first_pick(
    snapshot: Snapshot,
    identity: Identity,
    model: ModelRoute,
    backends: ModelBackends,
    affinity_key: str | None,
) -> tuple[Lease, ModelRoute] | None:
    """A lease on the model's backend, else a fallback's, else (none being available) any of the model's
    backends; None when the only backends that could take it are at their cap."""
    lease = backends.pool.pick(affinity_key)
    if lease is not None:
        return lease, model
    for fallback in _fallbacks(snapshot, identity, model):
        lease = snapshot.backends[fallback.name].pool.pick(affinity_key)
        if lease is not None:
            backends.counts.fell_back(fallback.name)
            return lease, fallback
    if backends.pool.any_available():
        return None  # available backends that are merely full: wait for them, not for one that is out
    lease = backends.pool.panic_pick(affinity_key)
    if lease is None:
        return None
    backends.counts.panic_picks += 1
    return lease, model


async def _wait_for_room(
    snapshot: Snapshot,
    identity: Identity,
    model: ModelRoute,
    backends: ModelBackends,
    affinity_key: str | None,
) -> tuple[Lease, ModelRoute]:
    """Wait for one of the model's backends to be below its cap, then pick again; 503 at the deadline."""
    room = backends.spec.room
    if backends.waiting_for_room >= room.max_waiting:
        backends.counts.room_timeouts += 1
        why = (
            "as many requests as may wait for them already do" if room.max_waiting else "requests do not wait"
        )
        raise _all_full(model, room.timeout, why)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + room.timeout
    backends.counts.room_waits += 1
    backends.waiting_for_room += 1
    try:
        while await wait_for_room(backends.pool.backends, deadline):
            picked = _first_pick(snapshot, identity, model, backends, affinity_key)
            if picked is not None:
                return picked
    finally:
        backends.waiting_for_room -= 1
    backends.counts.room_timeouts += 1
    raise _all_full(model, room.timeout, f"none came free while this request waited {room.timeout:g} seconds")


def _all_full(model: ModelRoute, timeout: float, why: str) -> CapacityExhaustedError:
    # A backend frees room whenever one of its requests ends; having seen none for a whole timeout, the
    # same time again is the honest hint, within the 1-60 seconds the capacity answers use.
    retry = min(60, max(1, math.ceil(timeout)))
    return CapacityExhaustedError(
        f"Every backend of the model '{model.name}' has as many requests in progress as it may take: "
        f"{why}. Try again in {retry} seconds.",
        retry_after_seconds=retry,
    )


def _retry_pick(
    snapshot: Snapshot,
    identity: Identity,
    model: ModelRoute,
    failed: Lease,
    served: ModelRoute,
    affinity_key: str | None,
) -> tuple[Lease, ModelRoute] | None:
    """A lease on another available backend (of the model served, else of a fallback), if there is one
    and the retry budget allows it; None otherwise."""
    lease = snapshot.backends[served.name].pool.pick(affinity_key, avoid=failed.backend)
    target = served
    if lease is None:
        for fallback in _fallbacks(snapshot, identity, model):
            if fallback is not served:
                lease = snapshot.backends[fallback.name].pool.pick(affinity_key, avoid=failed.backend)
                if lease is not None:
                    target = fallback
                    break
    if lease is None:
        return None
    backends = snapshot.backends[model.name]
    if not backends.retry_budget.try_spend():
        backends.counts.retries_refused += 1
        lease.release()
        return None
    if target is not served and target is not model:
        backends.counts.fell_back(target.name)
    return lease, target


def _fallbacks(snapshot: Snapshot, identity: Identity, model: ModelRoute) -> list[ModelRoute]:
    """The model's fallbacks that exist in this configuration and that the caller may use, in order."""
    router = snapshot.router
    found = []
    for name in model.fallbacks:
        fallback = router.get(name)
        if fallback is not None and router.allows(identity, fallback):
            found.append(fallback)
    return found
