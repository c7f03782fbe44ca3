"""Mixed client load for ledger tests: what each client saw, to compare with what the gateway recorded."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

__all__ = ["Load", "Seen", "mixed_load"]


@dataclass
class Seen:
    """Per user: requests answered, 429s, and the usage each answer reported."""

    requests: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    limited: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    prompt: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    completion: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    request_ids: set[str] = field(default_factory=set)


async def _one(client: httpx.AsyncClient, user: str, key: str, index: int, seen: Seen) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    kind = index % 3
    body: dict[str, Any]
    if kind == 2:
        body = {"model": "simulator-embed", "input": [f"text {index}", "more"]}
        response = await client.post("/v1/embeddings", json=body, headers=headers)
        usage = response.json().get("usage") if response.status_code == 200 else None
    elif kind == 1:
        body = {
            "model": "simulator-model",
            "stream": True,
            "max_tokens": 1 + index % 7,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": f"stream {index}"}],
        }
        usage = None
        async with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: {") and '"usage"' in line:
                    usage = orjson.loads(line[6:]).get("usage") or usage
    else:
        body = {
            "model": "simulator-model",
            "max_tokens": 1 + index % 5,
            "messages": [{"role": "user", "content": f"hello {index}"}],
        }
        response = await client.post("/v1/chat/completions", json=body, headers=headers)
        usage = response.json().get("usage") if response.status_code == 200 else None
    seen.requests[user] += 1
    seen.request_ids.add(response.headers["x-request-id"])
    if response.status_code == 429:
        seen.limited[user] += 1
    if usage:
        seen.prompt[user] += usage["prompt_tokens"]
        seen.completion[user] += usage.get("completion_tokens", 0)


def mixed_load(url: str, users: dict[str, str], per_user: int, concurrency: int = 20) -> Seen:
    """Send ``per_user`` mixed requests (chat, streamed chat, embeddings) for every user, concurrently."""
    seen = Seen()

    async def run() -> None:
        semaphore = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:

            async def guarded(user: str, key: str, index: int) -> None:
                async with semaphore:
                    await _one(client, user, key, index, seen)

            await asyncio.gather(
                *(guarded(user, key, i) for user, key in users.items() for i in range(per_user))
            )

    asyncio.run(run())
    return seen


class Load:
    """Clients in threads sending chat requests over keep-alive connections until stopped.

    Remembers every answered request id, and every failure: a transport error (the exception's class) or
    an answer other than 200 (its status). A failed request is retried after 10 ms.
    """

    def __init__(self, url: str, threads: int = 4, key: str = "enterpriseuser1_key") -> None:
        self.url = url
        self.key = key
        self.answered: set[str] = set()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        body = {"model": "simulator-model", "max_tokens": 2, "messages": [{"role": "user", "content": "hi"}]}
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self._stop.is_set():
                try:
                    response = client.post(
                        "/v1/chat/completions",
                        json=body,
                        headers={"Authorization": f"Bearer {self.key}"},
                    )
                except httpx.HTTPError as exc:
                    self.failures.append(type(exc).__name__)
                    time.sleep(0.01)
                    continue
                if response.status_code == 200:
                    self.answered.add(response.headers["x-request-id"])
                else:
                    self.failures.append(str(response.status_code))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)

    def wait_for_answers(self, count: int, what: str, seconds: float = 30.0) -> None:
        """Return once ``count`` requests in all have been answered; fail, saying ``what`` was awaited, if
        that takes ``seconds`` (a gateway that stopped answering, not a slow machine, is the failure)."""
        deadline = time.monotonic() + seconds
        while len(self.answered) < count:
            assert time.monotonic() < deadline, f"{what}: {len(self.answered)} of {count} answered"
            time.sleep(0.01)
