"""The background reads of backends' token counters against real HTTP servers that misbehave: too many
models, markup and newlines in labels, errors, garbage, a closed port, a password in the URL."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import pytest

from maas_gateway.balancing.fetch import HttpFetch
from maas_gateway.metering.counter_recorder import MAX_MODELS_PER_BACKEND, CounterRecorder
from maas_gateway.metering.readings import InMemoryBackendReadings
from tests.support.clock import FakeClock
from tests.support.processes import free_port
from tests.support.raw_backend import read_request, serving


def _answering(
    status: int, body: str
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A raw backend's handler answering every request with ``status`` and ``body``."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await read_request(reader) is not None:
            data = body.encode()
            head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(data)}\r\nContent-Type: text/plain\r\n\r\n"
            writer.write(head.encode() + data)
            await writer.drain()

    return handler


def _counters(*models: str, prompt: float = 10, generation: float = 5) -> str:
    lines = []
    for model in models:
        lines.append(f'vllm:prompt_tokens_total{{model_name="{model}"}} {prompt}')
        lines.append(f'vllm:generation_tokens_total{{model_name="{model}"}} {generation}')
    return "\n".join(lines) + "\n"


def test_a_backend_naming_many_models_is_capped_and_odd_labels_are_kept_as_data(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A backend reporting hundreds of models (one with markup and a newline in its name) has at most
    ``MAX_MODELS_PER_BACKEND`` readings stored, with a warning; names are stored as they are, not run."""
    models = [f"m{index:03d}" for index in range(300)] + ["[red]x\\ny"]

    async def main() -> None:
        async with serving(_answering(200, _counters(*models))) as url:
            readings = InMemoryBackendReadings()
            fetch = HttpFetch(timeout=5)
            recorder = CounterRecorder(readings, fetch, lambda: [url], clock=FakeClock(100.0))
            with caplog.at_level(logging.WARNING, "maas_gateway.ledger"):
                stored = await recorder.read_once()
            await fetch.aclose()
        assert len(stored) == MAX_MODELS_PER_BACKEND
        assert "[red]x\ny" in {reading.model for reading in stored}  # sorted first, a name like any other
        assert "only the first 64" in caplog.text

    asyncio.run(main())


def test_failing_backends_are_skipped_and_logged_once_until_they_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 500, negative counters, and a closed port with a password in its URL give no readings; each is
    logged when it starts failing, not every round, and the password never reaches the log; a healthy
    backend beside them is read."""

    async def main() -> None:
        async with (
            serving(_answering(500, "no")) as broken,
            serving(_answering(200, _counters("m", prompt=-1))) as negative,
            serving(_answering(200, _counters("m"))) as healthy,
        ):
            closed = f"http://user:s3cret@127.0.0.1:{free_port()}"
            readings = InMemoryBackendReadings()
            fetch = HttpFetch(timeout=5)
            recorder = CounterRecorder(readings, fetch, lambda: [broken, negative, closed, healthy])
            with caplog.at_level(logging.INFO, "maas_gateway.ledger"):
                first = await recorder.read_once()
                second = await recorder.read_once()
            await fetch.aclose()
        assert [reading.backend for reading in first] == [healthy]
        assert [reading.backend for reading in second] == [healthy]
        assert caplog.text.count("cannot be read") == 3
        assert "s3cret" not in caplog.text
        assert "HTTP 500" in caplog.text
        assert "not a count" in caplog.text

    asyncio.run(main())
