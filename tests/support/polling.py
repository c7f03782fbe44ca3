"""Waiting for something another process does, by asking again at short intervals until a deadline.

A fixed sleep either wastes time or is too short on a loaded machine; a poll returns as soon as the thing
has happened, and its deadline, far above the expected wait, turns only a hang into a failure, with a
message saying what never happened.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

import httpx

from tests.support.processes import ServerProcess

__all__ = ["log_through", "wait_until", "wait_until_async"]

T = TypeVar("T")


def wait_until(condition: Callable[[], T], what: str, seconds: float = 10.0, interval: float = 0.05) -> T:
    """Call ``condition`` until it returns something true, and return that; fail naming ``what`` after
    ``seconds``."""
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds:g} s"
        time.sleep(interval)
    return result


async def wait_until_async(
    condition: Callable[[], object], what: str, seconds: float = 10.0, interval: float = 0.001
) -> None:
    """Let the event loop run until ``condition`` holds (a state, not a time, is what tests wait for);
    fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds:g} s"
        await asyncio.sleep(interval)


def log_through(server: ServerProcess, response: httpx.Response, seconds: float = 10.0) -> str:
    """The server's log once the access-log line of ``response`` (found by its x-request-id) is in it.

    Access-log lines are written in batches, at most 50 ms late, and in order: every line of an earlier
    request is in the log too.
    """
    request_id = response.headers["x-request-id"]

    def log_with_the_line() -> str:
        log = server.log()
        return log if f'"request_id":"{request_id}"' in log else ""

    return wait_until(log_with_the_line, f"the access-log line of request {request_id}", seconds)
