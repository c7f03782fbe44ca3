"""Decoding, validating and measuring request bodies without holding the event loop.

Bodies of ``PROCESS_BYTES`` and more are decoded in a worker process instead (started at the first one):
orjson decodes a body in one call that holds the GIL (about 120 ms for 300,000 messages), which no
thread can interleave with the loop. The process returns only what the pipeline uses (the request's
model, stream and output fields, and the prompt's size); when the body must change on its way to the
backend, the process applies the changes and encodes it too, so the gateway's own process never holds
the decoded messages. Errors cross back as their class, message, code and parameter.

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
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from maas_gateway.errors import GatewayError
from maas_gateway.proxy.schemas import GenerationRequest, parse_body
from maas_gateway.proxy.upstream_request import upstream_body
from maas_gateway.tokens import PromptSize, prompt_size

__all__ = ["OFF_LOOP_BYTES", "PROCESS_BYTES", "BodyParser", "ParsedBody"]

OFF_LOOP_BYTES = 256 * 1024
PROCESS_BYTES = 2 * 1024 * 1024


@dataclass(slots=True)
class ParsedBody:
    """A decoded request body; ``data`` is ``None`` when it was decoded in the worker process."""

    data: dict[str, Any] | None
    request: GenerationRequest
    measured: PromptSize | None = None  # measured off the loop for big bodies; else on first use
    edits: dict[str, Any] = field(default_factory=dict)

    def prompt(self) -> PromptSize:
        if self.measured is None:
            assert self.data is not None, "bodies decoded elsewhere come measured"
            self.measured = prompt_size(self.data)
        return self.measured

    def set(self, name: str, value: Any) -> None:
        """Change a top-level field of the body that goes to the backend."""
        self.edits[name] = value
        if self.data is not None:
            self.data[name] = value


class BodyParser:
    def __init__(
        self, off_loop_bytes: int = OFF_LOOP_BYTES, threads: int = 2, process_bytes: int = PROCESS_BYTES
    ) -> None:
        self.off_loop_bytes = off_loop_bytes
        self.process_bytes = process_bytes
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._process_pool: ProcessPoolExecutor | None = None

    async def parse(self, raw: bytes, schema: type[GenerationRequest]) -> ParsedBody:
        """Decode and validate ``raw`` (a 400 saying what is wrong), measuring big bodies' prompts too."""
        if len(raw) < self.off_loop_bytes:
            return ParsedBody(*parse_body(raw, schema))
        loop = asyncio.get_running_loop()
        if len(raw) < self.process_bytes:
            return await loop.run_in_executor(self._executor(), _parse, raw, schema)
        outcome = await loop.run_in_executor(self._processes(), _parse_remotely, raw, schema)
        request, measured = _unwrap(outcome)
        return ParsedBody(None, request, measured)

    async def upstream_body(
        self, raw: bytes, parsed: ParsedBody, served_name: str, stream: bool, *, changed: bool
    ) -> bytes:
        """``upstream_request.upstream_body``, re-encoding big bodies off the loop."""
        if parsed.data is None:
            options = parsed.request.stream_options or {}
            unchanged = (
                not changed
                and parsed.request.model == served_name
                and (not stream or options.get("include_usage") is True)
            )
            if unchanged:
                return raw
            loop = asyncio.get_running_loop()
            outcome = await loop.run_in_executor(
                self._processes(), _edit_remotely, raw, parsed.edits, served_name, stream
            )
            body: bytes = _unwrap(outcome)
            return body
        data = parsed.data
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
        if self._process_pool is not None:
            self._process_pool.shutdown(wait=False, cancel_futures=True)
            self._process_pool = None

    def _processes(self) -> ProcessPoolExecutor:
        if self._process_pool is None:
            # spawn, not fork: forking a process that runs an event loop and threads copies their state.
            context = multiprocessing.get_context("spawn")
            self._process_pool = ProcessPoolExecutor(1, mp_context=context)
        return self._process_pool

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="maas-body")
        return self._pool


def _parse(raw: bytes, schema: type[GenerationRequest]) -> ParsedBody:
    data, request = parse_body(raw, schema)
    return ParsedBody(data, request, prompt_size(data))


def _summary(request: GenerationRequest) -> GenerationRequest:
    """The request without its prompt: what the pipeline reads, small enough to send between processes."""
    kind = type(request)
    return kind.model_construct(**{name: getattr(request, name) for name in kind.SUMMARY_FIELDS})


def _failure(error: GatewayError) -> tuple[str, type[GatewayError], str, str, str | None]:
    # Exceptions with keyword-only arguments lose them when pickled, so errors travel as their parts.
    return ("error", type(error), error.message, error.code, error.param)


def _unwrap(outcome: Any) -> Any:
    if isinstance(outcome, tuple) and outcome and outcome[0] == "error":
        _, kind, message, code, param = outcome
        raise kind(message, code=code, param=param)
    return outcome


def _parse_remotely(raw: bytes, schema: type[GenerationRequest]) -> Any:
    """In the worker process: the request's summary and the prompt's size."""
    try:
        data, request = parse_body(raw, schema)
    except GatewayError as error:
        return _failure(error)
    return _summary(request), prompt_size(data)


def _edit_remotely(raw: bytes, edits: dict[str, Any], served_name: str, stream: bool) -> Any:
    """In the worker process: the body for the backend, with ``edits`` and the usual rewrites applied."""
    try:
        data, _request = parse_body(raw, GenerationRequest)
    except GatewayError as error:
        return _failure(error)
    data.update(edits)
    try:
        return upstream_body(raw, data, served_name, stream, changed=bool(edits))
    except GatewayError as error:
        return _failure(error)
