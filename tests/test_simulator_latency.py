"""The simulator's latencies (time to first token, inter-token latency) in process: its ASGI app is called
directly with a ``sleep`` that records each delay instead of waiting, so the order of delays and chunks is
checked exactly and nothing is timed. `maas sim --ttft/--itl` over HTTP: tests/test_simulator.py."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import orjson
import pytest

from maas_gateway.simulator import SimulatorSettings, create_simulator_app

Event = tuple[str, Any]  # ("sleep", seconds) or ("chunk", the data: payload) or ("body", JSON)


def _events(body: dict[str, Any], settings: SimulatorSettings) -> list[Event]:
    """Serve one chat request; return the simulator's delays and what it sent, in order."""
    events: list[Event] = []

    async def sleep(seconds: float) -> None:
        events.append(("sleep", seconds))

    async def main() -> None:
        app = create_simulator_app(settings, sleep=sleep)
        requests = [{"type": "http.request", "body": orjson.dumps(body), "more_body": False}]
        answered = asyncio.Event()  # set when the response is over: the client then leaves

        async def receive() -> dict[str, Any]:
            if requests:
                return requests.pop()
            await answered.wait()
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] != "http.response.body":
                return
            text = message.get("body", b"").decode()
            if body.get("stream"):
                events.extend(("chunk", line[6:]) for line in text.split("\n\n") if line.startswith("data: "))
            elif text:
                events.append(("body", orjson.loads(text)))
            if not message.get("more_body", False):
                answered.set()

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/chat/completions",
            "raw_path": b"/v1/chat/completions",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"content-type", b"application/json")],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8001),
        }
        await app(scope, receive, send)

    asyncio.run(main())
    return events


HELLO = {"model": "simulator-model", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 5}
SLOW = SimulatorSettings(time_to_first_token=0.3, inter_token_latency=0.1)


def _shape(event: Event) -> str:
    """A chunk as what it carries: the role, a token, the finish reason, or [DONE]."""
    kind, value = event
    if kind == "sleep":
        return f"sleep {value:g}"
    if value == "[DONE]":
        return "[DONE]"
    choice = orjson.loads(value)["choices"][0]
    if choice["finish_reason"] is not None:
        return "finish"
    return "role" if "role" in choice["delta"] else "token"


def test_a_stream_waits_the_ttft_before_its_first_chunk_and_the_itl_between_tokens() -> None:
    """With a time to first token of 0.3 s and 0.1 s between tokens, a five-token stream waits 0.3 s before
    anything is sent, then 0.1 s before each token after the first, and nothing after the last."""
    shapes = [_shape(event) for event in _events({**HELLO, "stream": True}, SLOW)]
    assert shapes == [
        "sleep 0.3",
        "role",
        "token",
        *["sleep 0.1", "token"] * 4,
        "finish",
        "[DONE]",
    ]


def test_an_answer_without_streaming_waits_for_all_its_tokens_at_once() -> None:
    """Without streaming, the whole answer comes after one pause: the time to first token plus the gaps
    between its tokens (0.3 s + 4 x 0.1 s for five tokens)."""
    events = _events(HELLO, SLOW)
    assert [kind for kind, _ in events] == ["sleep", "body"]
    assert events[0][1] == pytest.approx(0.7)
    assert events[1][1]["usage"]["completion_tokens"] == 5


def test_no_latency_means_no_waiting() -> None:
    """The default simulator (no latencies) never waits, streaming or not."""
    for body in (HELLO, {**HELLO, "stream": True}):
        assert all(kind != "sleep" for kind, _ in _events(body, SimulatorSettings()))
