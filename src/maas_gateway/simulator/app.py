"""A vLLM-compatible model server that needs no GPU.

It speaks the OpenAI/vLLM API shapes (chat, completions, embeddings, models, health, SSE streaming with
``stream_options.include_usage``, vLLM's queue gauges in ``/metrics``: ``load_metrics``) so that the
gateway, its limits, its balancing and its clients can be exercised end to end. See ``generation`` for
what it answers.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from maas_gateway.errors import error_body
from maas_gateway.simulator.generation import (
    SimulatorSettings,
    completion_tokens,
    embedding,
    prompt_tokens,
)
from maas_gateway.simulator.load_metrics import ServerLoad
from maas_gateway.tokens import estimate_tokens, prompt_text

__all__ = ["create_simulator_app"]


class _BadRequest(Exception):
    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _error(status: int, message: str, code: str) -> Response:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return Response(error_body(message, kind, code), status, media_type="application/json")


class _Simulator:
    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self.started = int(time.time())
        self.load = ServerLoad(settings.models)

    async def _body(self, request: Request, models: tuple[str, ...]) -> dict[str, Any]:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise _BadRequest(400, "The request body is not valid JSON.", "invalid_json") from None
        if not isinstance(body, dict):
            raise _BadRequest(400, "The request body must be a JSON object.", "invalid_json")
        model = body.get("model")
        if model not in models:
            raise _BadRequest(404, f"The model `{model}` does not exist.", "model_not_found")
        if self.settings.failure_rate and self.settings.rng.random() < self.settings.failure_rate:
            raise _BadRequest(500, "The simulator failed this request on purpose.", "injected")
        return body

    async def chat(self, request: Request) -> Response:
        return await self._generate(request, chat=True)

    async def completions(self, request: Request) -> Response:
        return await self._generate(request, chat=False)

    async def _generate(self, request: Request, *, chat: bool) -> Response:
        try:
            body = await self._body(request, self.settings.models)
        except _BadRequest as exc:
            return _error(exc.status, exc.message, exc.code)
        max_tokens = body.get("max_completion_tokens")
        if max_tokens is None:
            max_tokens = body.get("max_tokens")
        if max_tokens is not None and (not _is_int(max_tokens) or max_tokens < 1):
            return _error(400, "`max_tokens` must be a positive integer.", "invalid_value")
        last_user = _last_user_text(body) if chat else prompt_text(body)
        tokens, finish = completion_tokens(self.settings, last_user, max_tokens)
        usage = {
            "prompt_tokens": prompt_tokens(prompt_text(body)),
            "completion_tokens": len(tokens),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        ident = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        model = body["model"]
        if body.get("stream") is True:
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            stream = self._stream(ident, model, chat, tokens, finish, usage, include_usage)
            return StreamingResponse(self.load.tracked(model, stream), media_type="text/event-stream")
        self.load.started(model)
        whole = False
        try:
            await self._pause(len(tokens))
            whole = True
        finally:
            self.load.ended(model, whole=whole)
        text = "".join(tokens)
        choice: dict[str, Any] = {"index": 0, "logprobs": None, "finish_reason": finish}
        if chat:
            choice["message"] = {"role": "assistant", "content": text}
        else:
            choice["text"] = text
        return _json(
            {
                "id": ident,
                "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()),
                "model": model,
                "choices": [choice],
                "usage": usage,
            }
        )

    async def _pause(self, token_count: int) -> None:
        delay = self.settings.time_to_first_token
        delay += self.settings.inter_token_latency * max(0, token_count - 1)
        if delay > 0:
            await asyncio.sleep(delay)

    async def _stream(
        self,
        ident: str,
        model: str,
        chat: bool,
        tokens: list[str],
        finish: str,
        usage: dict[str, int],
        include_usage: bool,
    ) -> AsyncIterator[bytes]:
        created = int(time.time())
        kind = "chat.completion.chunk" if chat else "text_completion"

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
            payload = {"id": ident, "object": kind, "created": created, "model": model}
            payload["choices"] = choices
            payload.update(extra)
            return b"data: " + orjson.dumps(payload) + b"\n\n"

        def piece(text: str | None, reason: str | None, role: bool = False) -> dict[str, Any]:
            if not chat:
                return {"index": 0, "text": text or "", "logprobs": None, "finish_reason": reason}
            delta: dict[str, Any] = {} if text is None else {"content": text}
            if role:
                delta["role"] = "assistant"
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}

        if self.settings.time_to_first_token > 0:
            await asyncio.sleep(self.settings.time_to_first_token)
        if chat:
            yield chunk([piece("", None, role=True)])
        for index, token in enumerate(tokens):
            if index and self.settings.inter_token_latency > 0:
                await asyncio.sleep(self.settings.inter_token_latency)
            yield chunk([piece(token, None)])
        yield chunk([piece(None if chat else "", finish)])
        if include_usage:
            yield chunk([], usage=usage)
        yield b"data: [DONE]\n\n"

    async def embeddings(self, request: Request) -> Response:
        try:
            body = await self._body(request, self.settings.embedding_models)
        except _BadRequest as exc:
            return _error(exc.status, exc.message, exc.code)
        raw = body.get("input")
        texts = _embedding_inputs(raw)
        if texts is None:
            return _error(400, "`input` must be a string or a list of strings.", "invalid_value")
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            return _error(400, "`encoding_format` must be 'float' or 'base64'.", "invalid_value")
        dims = self.settings.embedding_dimensions
        data = [
            {"object": "embedding", "index": i, "embedding": embedding(text, dims, encoding)}
            for i, text in enumerate(texts)
        ]
        used = sum(max(1, estimate_tokens(text)) for text in texts)
        usage = {"prompt_tokens": used, "total_tokens": used}
        return _json({"object": "list", "data": data, "model": body["model"], "usage": usage})

    async def models(self, request: Request) -> Response:
        names = self.settings.models + self.settings.embedding_models
        data = [
            {
                "id": name,
                "object": "model",
                "created": self.started,
                "owned_by": "vllm",
                "root": name,
                "parent": None,
                "max_model_len": self.settings.max_model_len,
            }
            for name in names
        ]
        return _json({"object": "list", "data": data})

    async def health(self, request: Request) -> Response:
        return Response(b"", 200)

    async def metrics(self, request: Request) -> Response:
        return Response(self.load.text(), 200, media_type="text/plain; version=0.0.4; charset=utf-8")


def _last_user_text(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return prompt_text({"messages": [message]})
    return ""


def _embedding_inputs(raw: Any) -> list[str] | None:
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw:
        if all(isinstance(item, str) for item in raw):
            return list(raw)
        if all(_is_int(item) for item in raw):
            return [" ".join(map(str, raw))]
        if all(isinstance(item, list) and item and all(_is_int(i) for i in item) for item in raw):
            return [" ".join(map(str, item)) for item in raw]
    return None


def _is_int(value: Any) -> bool:
    """JSON integers only: ``true`` is not 1 here."""
    return isinstance(value, int) and not isinstance(value, bool)


def create_simulator_app(settings: SimulatorSettings | None = None) -> Starlette:
    simulator = _Simulator(settings or SimulatorSettings())
    routes = [
        Route("/v1/chat/completions", simulator.chat, methods=["POST"]),
        Route("/v1/completions", simulator.completions, methods=["POST"]),
        Route("/v1/embeddings", simulator.embeddings, methods=["POST"]),
        Route("/v1/models", simulator.models, methods=["GET"]),
        Route("/health", simulator.health, methods=["GET"]),
        Route("/metrics", simulator.metrics, methods=["GET"]),
    ]
    return Starlette(routes=routes)
