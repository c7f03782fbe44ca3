"""Noticing a client that goes away: vLLM aborts a request whose client has closed the connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

from starlette.types import Receive

__all__ = ["unless_disconnected", "until_disconnected"]

T = TypeVar("T")


async def until_disconnected(receive: Receive) -> None:
    """Return when the client has closed the connection (the request's body is read already)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(work: Coroutine[Any, Any, T], receive: Receive) -> T | None:
    """The result of ``work``, or None if the client closes the connection first; ``work`` is then
    cancelled, and its cleanup has run when this returns."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(until_disconnected(receive))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        watcher.cancel()
        raise
    watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None
