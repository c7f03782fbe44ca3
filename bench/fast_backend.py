"""A minimal OpenAI-compatible backend on uvloop and httptools, far cheaper per request than the gateway.

The gateway's throughput as a share of the simulator's says little when the simulator (Starlette on
uvicorn) costs nearly as much CPU per request as the gateway: a slow backend flatters the ratio. This
server is an ``asyncio.Protocol`` with llhttp parsing and no framework, so the same ratio against it
shows the gateway's own cost.

It answers what the benchmark and a smoke test need, in the simulator's shapes and under its model names
(so one gateway configuration fronts either): ``POST /v1/chat/completions`` (a JSON answer with
``usage``, or with ``"stream": true`` an SSE stream with the usage chunk when
``stream_options.include_usage`` is true, ending in ``data: [DONE]``), ``POST /v1/embeddings``,
``GET /v1/models`` and ``GET /health``. Chat answers are built once at start-up: always the simulator's
default 20-token answer, with the usage the simulator reports for a short prompt, whatever the prompt.
HTTP/1.1 keep-alive and pipelining work; answers carry Content-Length, streams chunked framing.

    .venv/bin/python bench/fast_backend.py --port 8002
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from typing import Any, cast

import httptools
import orjson
import uvloop

from maas_gateway.errors import error_body
from maas_gateway.simulator import SimulatorSettings
from maas_gateway.simulator.generation import MIN_PROMPT_TOKENS, completion_tokens
from maas_gateway.tokens import estimate_tokens

__all__ = ["CHAT_MODEL", "EMBEDDING_MODEL", "main", "serve"]

CHAT_MODEL = "simulator-model"
EMBEDDING_MODEL = "simulator-embed"
_EMBEDDING = [1.0] + [0.0] * 383  # a unit vector as long as the simulator's
_CREATED = 1_700_000_000

# An answer is a head without its closing blank line (the connection decides whether to add
# ``connection: close``) and the body pieces, each written in its own ``transport.write``.
Answer = tuple[bytes, tuple[bytes, ...]]


def _json_answer(status: str, data: Any) -> Answer:
    body = data if isinstance(data, bytes) else orjson.dumps(data)
    head = f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
    return head.encode(), (body,)


def _error(status: str, message: str, code: str) -> Answer:
    return _json_answer(status, error_body(message, "invalid_request_error", code))


def _chat_answers() -> tuple[Answer, Answer, Answer]:
    """The whole answer, the stream without and the stream with the usage chunk, built once."""
    tokens, finish = completion_tokens(SimulatorSettings(), "", None)
    prompt = MIN_PROMPT_TOKENS  # what the simulator counts for a short prompt such as the benchmark's
    usage = {"prompt_tokens": prompt, "completion_tokens": len(tokens), "total_tokens": prompt + len(tokens)}
    ident = {"id": "chatcmpl-fastbackend", "created": _CREATED, "model": CHAT_MODEL}
    choice = {"index": 0, "message": {"role": "assistant", "content": "".join(tokens)}, "logprobs": None}
    whole = _json_answer(
        "200 OK",
        {
            **ident,
            "object": "chat.completion",
            "choices": [{**choice, "finish_reason": finish}],
            "usage": usage,
        },
    )

    def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        payload = b"data: " + orjson.dumps(
            {**ident, "object": "chat.completion.chunk", "choices": choices, **extra}
        )
        return payload + b"\n\n"

    def delta(content: dict[str, str], reason: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": content, "logprobs": None, "finish_reason": reason}]

    events = [event(delta({"role": "assistant", "content": ""}))]
    events += [event(delta({"content": token})) for token in tokens]
    events.append(event(delta({}, finish)))
    done = b"data: [DONE]\n\n"
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"

    def chunked(pieces: list[bytes]) -> tuple[bytes, ...]:
        framed = [b"%x\r\n%b\r\n" % (len(piece), piece) for piece in pieces]
        framed[-1] += b"0\r\n\r\n"  # the last chunk and the end of the body leave together
        return tuple(framed)

    return whole, (head, chunked([*events, done])), (head, chunked([*events, event([], usage=usage), done]))


_WHOLE, _STREAM, _STREAM_WITH_USAGE = _chat_answers()
_HEALTH: Answer = (b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n", (b"",))
_MODELS = _json_answer(
    "200 OK",
    {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": _CREATED, "owned_by": "vllm", "root": name}
            for name in (CHAT_MODEL, EMBEDDING_MODEL)
        ],
    },
)


def _decode(body: bytes, model: str) -> dict[str, Any] | Answer:
    """The request body as a dict, or the error answer the simulator would give."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _error("400 Bad Request", "The request body is not valid JSON.", "invalid_json")
    if not isinstance(data, dict):
        return _error("400 Bad Request", "The request body must be a JSON object.", "invalid_json")
    if data.get("model") != model:
        return _error("404 Not Found", f"The model `{data.get('model')}` does not exist.", "model_not_found")
    return data


def _chat(body: bytes) -> Answer:
    data = _decode(body, CHAT_MODEL)
    if isinstance(data, tuple):
        return data
    if data.get("stream") is not True:
        return _WHOLE
    options = data.get("stream_options")
    return (
        _STREAM_WITH_USAGE if isinstance(options, dict) and options.get("include_usage") is True else _STREAM
    )


def _embeddings(body: bytes) -> Answer:
    data = _decode(body, EMBEDDING_MODEL)
    if isinstance(data, tuple):
        return data
    texts = data.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        return _error("400 Bad Request", "`input` must be a string or a list of strings.", "invalid_value")
    used = sum(max(1, estimate_tokens(text)) for text in texts)
    vectors = [{"object": "embedding", "index": i, "embedding": _EMBEDDING} for i in range(len(texts))]
    usage = {"prompt_tokens": used, "total_tokens": used}
    return _json_answer(
        "200 OK", {"object": "list", "data": vectors, "model": EMBEDDING_MODEL, "usage": usage}
    )


def _route(method: bytes, path: bytes, body: bytes) -> Answer:
    if method == b"POST" and path == b"/v1/chat/completions":
        return _chat(body)
    if method == b"POST" and path == b"/v1/embeddings":
        return _embeddings(body)
    if method == b"GET" and path == b"/v1/models":
        return _MODELS
    if method == b"GET" and path == b"/health":
        return _HEALTH
    return _error(
        "404 Not Found", f"No route for {method.decode()} {path.decode(errors='replace')}.", "not_found"
    )


class _Connection(asyncio.Protocol):
    """One client connection; httptools calls the ``on_*`` methods while ``data_received`` feeds it.

    Every answer is written as soon as its request is complete, without awaiting anything, so pipelined
    requests are answered in order. There is no flow control: the benchmark's clients read everything.
    """

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.keep_alive = True
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without inheriting from it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return  # requests pipelined after one that closes the connection get no answer
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.keep_alive = False
            self._send(_error("400 Bad Request", "The request is not valid HTTP/1.1.", "invalid_http"))
        except httptools.HttpParserUpgrade:
            # Raised after the request was answered; this server upgrades to nothing, so it ends there.
            self.closing = True
            if self.transport is not None:
                self.transport.close()

    def on_message_begin(self) -> None:
        self.url, self.body = b"", []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_headers_complete(self) -> None:
        # Read here, not when the message is complete: llhttp may no longer report keep-alive by then.
        self.keep_alive = self.parser.should_keep_alive() and self.parser.get_http_version() == "1.1"

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        path = self.url.partition(b"?")[0]
        self._send(_route(self.parser.get_method(), path, b"".join(self.body)))

    def _send(self, answer: Answer) -> None:
        transport = self.transport
        if transport is None or self.closing:
            return
        head, pieces = answer
        # Each body piece is its own write, as a model server sends each token when it is generated, so
        # the gateway relays a stream event by event here as it does from the simulator.
        transport.write(head + (b"\r\n" if self.keep_alive else b"connection: close\r\n\r\n") + pieces[0])
        for piece in pieces[1:]:
            transport.write(piece)
        if not self.keep_alive:
            self.closing = True
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(host: str, port: int) -> asyncio.Server:
    """Listen on ``host``:``port``; the caller's loop serves until the server is closed."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(_Connection, host, port, backlog=1024)


async def _serve_forever(host: str, port: int) -> None:
    server = await serve(host, port)
    async with server:
        await server.serve_forever()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8002, help="port to listen on (8002)")
    args = parser.parse_args(argv)
    uvloop.run(_serve_forever(args.host, args.port))  # SIGTERM's default action ends the process


if __name__ == "__main__":
    main()
