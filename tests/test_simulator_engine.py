"""The simulator's engine in-process, with an injected clock: its queue, its KV-cache model, its counters."""

from __future__ import annotations

import asyncio

import pytest

from maas_gateway.simulator.engine import Engine, Sequence
from tests.support.clock import FakeClock


def _submit(engine: Engine, *prompts: int) -> list[Sequence]:
    sequences = [engine.arrive(prompt) for prompt in prompts]
    for sequence in sequences:
        engine.submit(sequence)
    return sequences


def test_without_bounds_every_sequence_runs_at_once() -> None:
    """An engine without --max-num-seqs or --kv-cache-tokens starts every sequence it is given and
    reports a KV-cache usage of 0."""
    engine = Engine()
    sequences = [engine.arrive(10) for _ in range(100)]
    assert all(engine.submit(sequence) for sequence in sequences)
    engine.emit(sequences[0], 20)
    assert (engine.running, engine.waiting, engine.kv_cache_usage) == (100, 0, 0.0)
    assert not engine.bounded


def test_an_instant_sequence_changes_only_the_counters_and_needs_an_unbounded_engine() -> None:
    """A sequence counted as instant adds its tokens and its finish to the counters and is never seen
    running; a bounded engine, which must queue everything, refuses to count one."""
    engine = Engine()
    engine.count_instant(10, 20, "stop")
    assert (engine.prompt_tokens_total, engine.generation_tokens_total) == (10, 20)
    assert engine.finished["stop"] == 1
    assert (engine.running, engine.waiting) == (0, 0)
    with pytest.raises(RuntimeError, match="A bounded engine must queue every sequence"):
        Engine(max_num_seqs=4).count_instant(10, 20, "stop")


def test_max_num_seqs_queues_the_rest_and_starts_them_in_arrival_order() -> None:
    """With max_num_seqs 2 the third to fifth sequences wait; each finished sequence starts the one
    that has waited longest."""
    engine = Engine(max_num_seqs=2)
    a, b, c, d, e = _submit(engine, 10, 10, 10, 10, 10)
    assert (engine.running, engine.waiting) == (2, 3)
    assert engine.queued() == [c, d, e]
    assert engine.finish(a, "stop") == [c]
    assert engine.finish(c, "length") == [d]
    assert engine.finish(b, "stop") == [e]
    assert (engine.running, engine.waiting) == (2, 0)
    assert (engine.finished["stop"], engine.finished["length"], engine.finished["abort"]) == (2, 1, 0)


def test_kv_cache_usage_is_the_prompt_and_generated_tokens_of_running_sequences() -> None:
    """Usage counts each running sequence's prompt and the tokens it has generated so far, and drops
    by all of them when it finishes; the token counters only grow."""
    engine = Engine(kv_cache_tokens=100)
    a, b = _submit(engine, 30, 20)
    assert engine.kv_cache_usage == pytest.approx(0.5)
    engine.emit(a, 10)
    engine.emit(b)
    assert engine.kv_cache_usage == pytest.approx(0.61)
    engine.finish(a, "stop")
    assert engine.kv_cache_usage == pytest.approx(0.21)
    engine.finish(b, "stop")
    assert engine.kv_cache_usage == 0.0
    assert (engine.prompt_tokens_total, engine.generation_tokens_total) == (50, 11)


def test_a_prompt_that_does_not_fit_waits_and_holds_back_those_behind_it() -> None:
    """A prompt larger than the free KV cache waits though slots are free, and a small prompt behind it
    waits too (first come, first served); when room is freed both start."""
    engine = Engine(max_num_seqs=10, kv_cache_tokens=100)
    a, b, c = _submit(engine, 60, 50, 10)
    assert (engine.running, engine.queued()) == (1, [b, c])
    engine.emit(a, 20)
    assert engine.kv_cache_usage == pytest.approx(0.8)
    assert engine.finish(a, "stop") == [b, c]
    assert engine.kv_cache_usage == pytest.approx(0.6)


def test_a_prompt_larger_than_the_cache_runs_alone_and_usage_stops_at_one() -> None:
    """A prompt larger than the whole KV cache starts in an idle engine rather than wait forever; the
    usage it causes is reported as 1, and everything else waits until it finishes."""
    engine = Engine(kv_cache_tokens=100)
    big, small = _submit(engine, 150, 1)
    assert (engine.running, engine.waiting, engine.kv_cache_usage) == (1, 1, 1.0)
    assert engine.finish(big, "stop") == [small]


def test_a_waiting_sequence_that_is_aborted_leaves_the_queue_once() -> None:
    """Aborting a waiting sequence removes it from the queue and counts one abort; finishing it again
    changes nothing."""
    engine = Engine(max_num_seqs=1)
    a, b, c = _submit(engine, 10, 10, 10)
    assert engine.finish(b, "abort") == []
    assert engine.finish(b, "abort") == []
    assert (engine.running, engine.queued(), engine.finished["abort"]) == (1, [c], 1)
    assert engine.finish(a, "stop") == [c]


def test_time_to_first_token_includes_the_wait_in_the_queue() -> None:
    """A sequence's time to first token runs from its arrival, so it includes the time it waited."""
    clock = FakeClock()
    engine = Engine(max_num_seqs=1, clock=clock)
    (a,) = _submit(engine, 10)
    clock.advance(0.5)
    engine.emit(a)
    (b,) = _submit(engine, 10)
    clock.advance(3.0)
    engine.finish(a, "stop")
    clock.advance(0.25)
    engine.emit(b)
    assert a.time_to_first_token == pytest.approx(0.5)
    assert b.started_at is not None
    assert b.started_at - b.arrived_at == pytest.approx(3.0)
    assert b.time_to_first_token == pytest.approx(3.25)


def test_a_queued_sequence_is_started_when_a_slot_frees_and_a_cancelled_wait_leaves_the_queue() -> None:
    """`until_started` returns when a slot is freed for a queued sequence (at once for one that runs).
    A waiter whose task is cancelled (its client went away) leaves the queue, counted as an abort."""

    async def scenario() -> None:
        engine = Engine(max_num_seqs=1)
        first, second, third = _submit(engine, 10, 10, 10)
        await engine.until_started(first)
        waiting_second = asyncio.ensure_future(engine.until_started(second))
        waiting_third = asyncio.ensure_future(engine.until_started(third))
        await asyncio.sleep(0)  # let both start waiting
        waiting_third.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting_third
        assert (engine.queued(), engine.finished["abort"]) == ([second], 1)
        assert not waiting_second.done()
        engine.finish(first, "stop")
        await waiting_second
        assert (engine.running, engine.waiting) == (1, 0)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("max_num_seqs", "kv_cache_tokens", "message"),
    [
        (0, None, "The engine needs room for at least one sequence."),
        (None, 0, "The KV cache needs room for at least one token."),
    ],
)
def test_an_engine_without_room_is_refused(
    max_num_seqs: int | None, kv_cache_tokens: int | None, message: str
) -> None:
    """An engine that could never run anything is refused with a sentence saying why."""
    with pytest.raises(ValueError, match=message):
        Engine(max_num_seqs, kv_cache_tokens)
