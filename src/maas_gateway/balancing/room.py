"""Waiting for room: a request whose model's backends are all at their ``max_in_flight`` waits here for
one of them to end a request, rather than overloading one.

The wait costs nothing until a request ends: each backend holds the waiters' futures and resolves them
all when one of its requests ends (``BackendState.end_request``); the woken requests pick again, and
those that find nothing (another took the room first) wait again until their deadline. Newcomers that
find room pick at once, without queueing behind the waiters: the room is this process's own count, so
the line is short-lived, and the model's capacity line (``capacity/``) is where fair order is kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from maas_gateway.balancing.backend import BackendState

__all__ = ["wait_for_room"]


async def wait_for_room(backends: Sequence[BackendState], deadline: float) -> bool:
    """Wait until one of ``backends`` ends a request, at the latest until ``deadline`` (the event loop's
    time); False if none did by then."""
    loop = asyncio.get_running_loop()
    if deadline <= loop.time():
        return False
    waiter: asyncio.Future[None] = loop.create_future()
    for backend in backends:
        backend.wake_on_room(waiter)
    try:
        async with asyncio.timeout_at(deadline):
            await waiter
    except TimeoutError:
        return False
    finally:
        for backend in backends:
            backend.forget_waiter(waiter)
    return True
