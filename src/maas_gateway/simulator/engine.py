"""The simulated engine's scheduler: which requests generate now, which wait, how full the KV cache is.

Like vLLM's scheduler, simplified:

- At most ``max_num_seqs`` sequences run at once; the others wait in arrival order. The sequence at the
  head of the queue blocks those behind it (first come, first served, as in vLLM).
- A running sequence holds KV-cache space for its prompt and for every token it has generated so far.
  The head of the queue starts only when its prompt fits in the space left. A sequence alone in an idle
  engine always starts, so a prompt larger than the whole cache cannot wait forever.
- Nothing running is preempted (vLLM would preempt the newest sequence and compute it again later): a
  cache that fills up while sequences run shows as full, and new sequences wait until one finishes.

The engine also keeps vLLM's counters (prompt and generation tokens, finished requests by reason). It is
a plain class with an injected clock; only ``until_started`` needs an event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Literal, get_args

__all__ = ["FINISH_REASONS", "Engine", "FinishReason", "Sequence"]

FinishReason = Literal["stop", "length", "abort"]
FINISH_REASONS: tuple[FinishReason, ...] = get_args(FinishReason)


class Sequence:
    """One request in the engine: its prompt, the tokens it has generated, and when things happened."""

    __slots__ = ("admission", "arrived_at", "first_token_at", "generated", "prompt_tokens", "started_at")

    def __init__(self, prompt_tokens: int, arrived_at: float) -> None:
        self.prompt_tokens = prompt_tokens
        self.generated = 0
        self.arrived_at = arrived_at
        self.started_at: float | None = None
        self.first_token_at: float | None = None
        # Set while the sequence waits in ``Engine.until_started``; resolved when it starts.
        self.admission: asyncio.Future[None] | None = None

    @property
    def kv_tokens(self) -> int:
        """The tokens this sequence keeps in the KV cache while it runs."""
        return self.prompt_tokens + self.generated

    @property
    def time_to_first_token(self) -> float | None:
        """Seconds from arrival to the first token, the wait in the queue included."""
        if self.first_token_at is None:
            return None
        return self.first_token_at - self.arrived_at


class Engine:
    def __init__(
        self,
        max_num_seqs: int | None = None,
        kv_cache_tokens: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_num_seqs is not None and max_num_seqs < 1:
            raise ValueError("The engine needs room for at least one sequence.")
        if kv_cache_tokens is not None and kv_cache_tokens < 1:
            raise ValueError("The KV cache needs room for at least one token.")
        self.max_num_seqs = max_num_seqs
        self.kv_cache_tokens = kv_cache_tokens
        self._clock = clock
        self._running: set[Sequence] = set()
        self._waiting: deque[Sequence] = deque()
        self._kv_tokens = 0  # held by the running sequences
        self.prompt_tokens_total = 0
        self.generation_tokens_total = 0
        self.finished: dict[FinishReason, int] = dict.fromkeys(FINISH_REASONS, 0)

    @property
    def bounded(self) -> bool:
        """Whether a sequence can ever have to wait."""
        return self.max_num_seqs is not None or self.kv_cache_tokens is not None

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def kv_cache_usage(self) -> float:
        """The share of the KV cache the running sequences hold, from 0 to 1 (0 without a cache model)."""
        if self.kv_cache_tokens is None:
            return 0.0
        return min(1.0, self._kv_tokens / self.kv_cache_tokens)

    def arrive(self, prompt_tokens: int) -> Sequence:
        """A new sequence, not yet submitted."""
        return Sequence(prompt_tokens, self._clock())

    def submit(self, sequence: Sequence) -> bool:
        """Start ``sequence`` if it may start now and say so; otherwise queue it behind the others."""
        if not self._waiting and self._fits(sequence):
            self._start(sequence)
            return True
        self._waiting.append(sequence)
        return False

    async def until_started(self, sequence: Sequence) -> None:
        """Return once a sequence that ``submit`` queued runs. Cancelled while waiting, it leaves the queue.

        This is apart from ``submit`` so that a sequence that starts at once costs no coroutine.
        """
        if sequence.started_at is not None:
            return
        sequence.admission = asyncio.get_running_loop().create_future()
        try:
            await sequence.admission
        except asyncio.CancelledError:
            # The client went away while it waited, or just as it started: either way it is over.
            self.finish(sequence, "abort")
            raise
        finally:
            sequence.admission = None

    def count_instant(self, prompt_tokens: int, generated: int, reason: FinishReason) -> None:
        """Count a sequence that starts, generates and finishes within one step of the event loop, in an
        engine that starts everything: nothing can see it run, so only the counters change. This is the
        instant simulator's whole answer, which the gateway's benchmark measures."""
        if self.bounded:
            raise RuntimeError("A bounded engine must queue every sequence; it cannot count one as instant.")
        self.prompt_tokens_total += prompt_tokens
        self.generation_tokens_total += generated
        self.finished[reason] += 1

    def emit(self, sequence: Sequence, count: int = 1) -> None:
        """Record ``count`` more generated tokens of a running sequence."""
        if sequence.first_token_at is None:
            sequence.first_token_at = self._clock()
        sequence.generated += count
        self._kv_tokens += count
        self.generation_tokens_total += count

    def finish(self, sequence: Sequence, reason: FinishReason) -> list[Sequence]:
        """End ``sequence`` (running or waiting) and start what may start now; the started are returned.

        Finishing a sequence that has finished already does nothing.
        """
        if sequence in self._running:
            self._running.remove(sequence)
            self._kv_tokens -= sequence.kv_tokens
        else:
            try:
                self._waiting.remove(sequence)
            except ValueError:
                return []  # finished already
        self.finished[reason] += 1
        return self._start_waiting()

    def queued(self) -> list[Sequence]:
        """The waiting sequences, the next to start first."""
        return list(self._waiting)

    def _fits(self, sequence: Sequence) -> bool:
        if not self._running:
            return True
        if self.max_num_seqs is not None and len(self._running) >= self.max_num_seqs:
            return False
        capacity = self.kv_cache_tokens
        return capacity is None or self._kv_tokens + sequence.prompt_tokens <= capacity

    def _start(self, sequence: Sequence) -> None:
        self._running.add(sequence)
        sequence.started_at = self._clock()
        self._kv_tokens += sequence.kv_tokens
        self.prompt_tokens_total += sequence.prompt_tokens

    def _start_waiting(self) -> list[Sequence]:
        started: list[Sequence] = []
        while self._waiting and self._fits(self._waiting[0]):
            sequence = self._waiting.popleft()
            self._start(sequence)
            started.append(sequence)
            if sequence.admission is not None and not sequence.admission.done():
                sequence.admission.set_result(None)
        return started
