"""Helpers for reload tests: a gateway's worker processes, and which of them answer a new key."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["KeyAnswers", "answers_for_new_key", "worker_pids"]


def worker_pids(supervisor: int) -> list[int]:
    """The worker processes of a `maas serve --workers N` supervisor (its children running the gateway).

    multiprocessing also starts a resource tracker, which is a child too but serves nothing.
    """
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    pids = []
    for child in children:
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:  # ended meanwhile
            continue
        if b"spawn_main" in command:
            pids.append(int(child))
    return sorted(pids)


@dataclass
class KeyAnswers:
    """The statuses a key got, and how many distinct worker processes answered it."""

    statuses: list[int]
    workers: int


def answers_for_new_key(
    url: str, key: str, limit: int, *, workers: int, least: int = 4, within: float = 10.0
) -> KeyAnswers:
    """Chat with a key never used before, each request on a fresh connection, until ``workers`` distinct
    worker processes answered (and at least ``least`` requests were sent), or ``within`` seconds passed.

    With `limits.storage: memory` each worker counts a key on its own, so an answer that leaves
    ``limit - 1`` requests (the key's request limit) is a worker's first for that key: their number is the
    number of workers that answered.
    """
    body = {"model": "simulator-model", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}
    statuses: list[int] = []
    firsts = 0
    fresh = httpx.Limits(max_keepalive_connections=0)
    deadline = time.monotonic() + within
    with httpx.Client(base_url=url, timeout=10, limits=fresh) as client:
        while time.monotonic() < deadline and (firsts < workers or len(statuses) < least):
            response = client.post(
                "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            statuses.append(response.status_code)
            firsts += response.headers.get("x-ratelimit-remaining-requests") == str(limit - 1)
    return KeyAnswers(statuses, firsts)
