"""A completion's life in the simulator: admitted by the engine, its tokens paced, answered whole or as a
stream, or cut off half-way.

What a request is answered is decided before it runs (``Answer``); the engine then decides when it may
start, and ``Latency`` how long its tokens take. A stream's head is sent at once and its first event when
the first token is out, as vLLM does, so the time to the first event includes the wait in the queue.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from starlette.responses import Response, StreamingResponse
from starlette.types import Receive

from maas_gateway.simulator.disconnect import unless_disconnected
from maas_gateway.simulator.engine import Engine, FinishReason, Sequence
from maas_gateway.simulator.failures import ConnectionCut, CutResponse
from maas_gateway.simulator.latency import Latency
from maas_gateway.simulator.metrics import SimulatorMetrics
from maas_gateway.simulator.shapes import DONE, StreamChunks, completion_body

__all__ = ["Answer", "Completions"]


@dataclass(slots=True)
class Answer:
    """What the simulator answers a completion request, decided before the engine runs it."""

    ident: str
    model: str
    chat: bool
    tokens: list[str]
    finish: FinishReason
    usage: dict[str, int]

    def body(self) -> bytes:
        text = "".join(self.tokens)
        return completion_body(
            self.ident, self.model, chat=self.chat, text=text, finish=self.finish, usage=self.usage
        )


class Completions:
    def __init__(self, engine: Engine, latency: Latency, metrics: SimulatorMetrics) -> None:
        self._engine = engine
        self._latency = latency
        self._metrics = metrics
        # Whether a whole answer can take time, in the queue or generating. Only then is a client that
        # goes away watched for (that costs a task per request), and only then is the answer produced
        # in a coroutine of its own: the instant simulator is the gateway's benchmark's backend.
        self._can_take_time = engine.bounded or not latency.instant

    async def whole(self, answer: Answer, receive: Receive, *, cut: bool = False) -> Response | None:
        """The whole answer once its last token is out, or None if the client went away before."""
        if not self._can_take_time and not cut:
            return self._instant(answer)
        return await unless_disconnected(self._produce(answer, cut), receive)

    def stream(self, answer: Answer, *, include_usage: bool, cut: bool = False) -> StreamingResponse:
        events = self._events(answer, include_usage, cut)
        return StreamingResponse(events, media_type="text/event-stream")

    def _instant(self, answer: Answer) -> Response:
        """The whole answer at once from an engine that starts everything and a model without delays."""
        self._engine.count_instant(answer.usage["prompt_tokens"], len(answer.tokens), answer.finish)
        self._metrics.observe_time_to_first_token(0.0)
        return Response(answer.body(), media_type="application/json")

    async def _produce(self, answer: Answer, cut: bool) -> Response:
        count = len(answer.tokens) // 2 if cut else len(answer.tokens)
        engine = self._engine
        sequence = engine.arrive(answer.usage["prompt_tokens"])
        if not engine.submit(sequence):
            await engine.until_started(sequence)
        try:
            for delay in self._delays(count):
                if delay > 0:
                    await asyncio.sleep(delay)
                self._emit(sequence)
        except BaseException:
            engine.finish(sequence, "abort")
            raise
        if cut:
            engine.finish(sequence, "abort")
            return CutResponse(answer.body(), media_type="application/json")
        engine.finish(sequence, answer.finish)
        return Response(answer.body(), media_type="application/json")

    async def _events(self, answer: Answer, include_usage: bool, cut: bool) -> AsyncIterator[bytes]:
        chunks = StreamChunks(answer.ident, answer.model, chat=answer.chat)
        tokens = answer.tokens
        count = len(tokens) // 2 if cut else len(tokens)
        engine = self._engine
        sequence = engine.arrive(answer.usage["prompt_tokens"])
        if not engine.submit(sequence):
            await engine.until_started(sequence)
        instant = self._latency.instant
        if instant:
            self._emit(sequence, count)  # nothing can tell when instant tokens came out
        try:
            for index, delay in enumerate(self._delays(count)):
                if delay > 0:
                    await asyncio.sleep(delay)
                if not instant:
                    self._emit(sequence)
                if index == 0 and answer.chat:
                    yield chunks.role()
                yield chunks.token(tokens[index])
        except BaseException:
            # The client went away (the stream is cancelled or closed) or the server stops.
            engine.finish(sequence, "abort")
            raise
        if cut:
            engine.finish(sequence, "abort")
            raise ConnectionCut
        engine.finish(sequence, answer.finish)
        yield chunks.finish(answer.finish)
        if include_usage:
            yield chunks.usage(answer.usage)
        yield DONE

    def _delays(self, count: int) -> Iterator[float]:
        """The seconds to wait before each of ``count`` tokens, each worked out when it is asked for."""
        if self._latency.instant:
            return itertools.repeat(0.0, count)
        return self._paced_delays(count)

    def _paced_delays(self, count: int) -> Iterator[float]:
        # Each token is due at a time reckoned from the first, so the time spent between tokens (sending
        # them, a busy event loop) does not add up into a slower stream.
        latency = self._latency
        loop = asyncio.get_running_loop()
        due = loop.time() + latency.time_to_first_token()
        for index in range(count):
            if index:
                due += latency.inter_token()
            yield due - loop.time()

    def _emit(self, sequence: Sequence, count: int = 1) -> None:
        if count == 0:
            return
        first = sequence.first_token_at is None
        self._engine.emit(sequence, count)
        if first:
            # The first token's time is set by emit; the queue's wait is part of it.
            self._metrics.observe_time_to_first_token(sequence.time_to_first_token or 0.0)
