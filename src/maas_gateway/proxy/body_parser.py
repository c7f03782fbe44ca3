"""Decoding, validating and measuring request bodies without holding the event loop.

A 10 MB body of 300,000 chat messages takes a few hundred milliseconds to decode, validate, measure
(tokens.prompt_size) and re-encode; done on the event loop, that time is stolen from every other client.
Bodies of ``OFF_LOOP_BYTES`` and more are therefore handled in a small thread pool of their own; smaller
ones stay on the loop, where a handoff (about 70 µs of CPU) would cost more than the work (a 64 KiB chat
body of many short messages takes about 0.4 ms to validate, a typical one a few µs). The threads hold
the GIL while they work, but Python hands it back to the loop every switch interval (5 ms), so other
clients wait milliseconds, not the whole parse. A pool of its own keeps big bodies from queueing in front
of the default executor's work (DNS lookups).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from maas_gateway.proxy.schemas import GenerationRequest, parse_body
from maas_gateway.proxy.upstream_request import upstream_body
from maas_gateway.tokens import PromptSize, prompt_size

__all__ = ["OFF_LOOP_BYTES", "BodyParser", "ParsedBody"]

OFF_LOOP_BYTES = 256 * 1024


@dataclass(slots=True)
class ParsedBody:
    data: dict[str, Any]
    request: GenerationRequest
    measured: PromptSize | None = None  # measured in the pool for big bodies; else on first use

    def prompt(self) -> PromptSize:
        if self.measured is None:
            self.measured = prompt_size(self.data)
        return self.measured


class BodyParser:
    def __init__(self, off_loop_bytes: int = OFF_LOOP_BYTES, threads: int = 2) -> None:
        self.off_loop_bytes = off_loop_bytes
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None

    async def parse(self, raw: bytes, schema: type[GenerationRequest]) -> ParsedBody:
        """Decode and validate ``raw`` (a 400 saying what is wrong), measuring big bodies' prompts too."""
        if len(raw) < self.off_loop_bytes:
            return ParsedBody(*parse_body(raw, schema))
        return await asyncio.get_running_loop().run_in_executor(self._executor(), _parse, raw, schema)

    async def upstream_body(
        self, raw: bytes, data: dict[str, Any], served_name: str, stream: bool, *, changed: bool
    ) -> bytes:
        """``upstream_request.upstream_body``, re-encoding big bodies in the pool."""
        if len(raw) < self.off_loop_bytes:
            return upstream_body(raw, data, served_name, stream, changed=changed)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor(), lambda: upstream_body(raw, data, served_name, stream, changed=changed)
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="maas-body")
        return self._pool


def _parse(raw: bytes, schema: type[GenerationRequest]) -> ParsedBody:
    data, request = parse_body(raw, schema)
    return ParsedBody(data, request, prompt_size(data))
