"""The simulator's rerank, score, tokenize/detokenize and audio endpoints, in vLLM's shapes.

Scores are a deterministic word overlap (so tests can predict the order); usage is reported as vLLM does
(rerank: ``total_tokens`` only; score: ``prompt_tokens``); tokenize's tokens are one per word. Audio
"transcribes" any upload to a fixed sentence and reports tokens: the upload's size in 1 KiB as input,
the sentence's words as output (OpenAI's ``usage.type: tokens``).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from maas_gateway.errors import GatewayError
from maas_gateway.http.multipart_fields import boundary_of, form_fields
from maas_gateway.simulator.generation import prompt_tokens
from maas_gateway.simulator.parsing import BadRequest, read_body
from maas_gateway.simulator.settings import SimulatorSettings
from maas_gateway.simulator.shapes import error_response, json_response

__all__ = ["TRANSCRIPT", "UtilityAPIs"]

TRANSCRIPT = "The quick brown fox jumps over the lazy dog."


class UtilityAPIs:
    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self.models = settings.models + settings.embedding_models

    async def rerank(self, request: Request) -> Response:
        try:
            body = await read_body(request, self.models)
        except BadRequest as exc:
            return exc.response()
        query, documents = body.get("query"), body.get("documents")
        if not isinstance(query, str) or not isinstance(documents, list) or not documents:
            return error_response(400, "`query` must be a string and `documents` a list.", "invalid_value")
        texts = [doc if isinstance(doc, str) else str((doc or {}).get("text", "")) for doc in documents]
        scored = sorted(
            ((i, _overlap(query, text)) for i, text in enumerate(texts)), key=lambda pair: -pair[1]
        )
        top = body.get("top_n")
        if isinstance(top, int) and top > 0:
            scored = scored[:top]
        used = sum(prompt_tokens(query + " " + text) for text in texts)
        results = [
            {"index": i, "document": {"text": texts[i]}, "relevance_score": score} for i, score in scored
        ]
        answer = {"id": "rerank-" + uuid.uuid4().hex, "model": body["model"], "usage": {"total_tokens": used}}
        return json_response({**answer, "results": results})

    async def score(self, request: Request) -> Response:
        try:
            body = await read_body(request, self.models)
        except BadRequest as exc:
            return exc.response()
        first, second = _texts(body.get("text_1")), _texts(body.get("text_2"))
        if not first or not second:
            return error_response(
                400, "`text_1` and `text_2` must be strings or lists of them.", "invalid_value"
            )
        pairs = (
            [(first[0], text) for text in second]
            if len(first) == 1
            else list(zip(first, second, strict=False))
        )
        used = sum(prompt_tokens(a + " " + b) for a, b in pairs)
        data = [{"index": i, "object": "score", "score": _overlap(a, b)} for i, (a, b) in enumerate(pairs)]
        usage = {"prompt_tokens": used, "total_tokens": used, "completion_tokens": 0}
        ident = "score-" + uuid.uuid4().hex
        head = {"id": ident, "object": "list", "created": int(time.time()), "model": body["model"]}
        return json_response({**head, "data": data, "usage": usage})

    async def tokenize(self, request: Request) -> Response:
        try:
            body = await read_body(request, self.models)
        except BadRequest as exc:
            return exc.response()
        prompt = body.get("prompt")
        if prompt is None and isinstance(body.get("messages"), list):
            prompt = " ".join(str(m.get("content", "")) for m in body["messages"] if isinstance(m, dict))
        if not isinstance(prompt, str):
            return error_response(400, "Send `prompt` (a string) or `messages`.", "invalid_value")
        tokens = [_token_id(word) for word in prompt.split()]
        return json_response(
            {
                "count": len(tokens),
                "max_model_len": self.settings.max_model_len,
                "tokens": tokens,
                "token_strs": None,
            }
        )

    async def detokenize(self, request: Request) -> Response:
        try:
            body = await read_body(request, self.models)
        except BadRequest as exc:
            return exc.response()
        tokens = body.get("tokens")
        if not isinstance(tokens, list) or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in tokens
        ):
            return error_response(400, "`tokens` must be a list of integers.", "invalid_value")
        return json_response({"prompt": " ".join(f"t{token}" for token in tokens)})

    async def audio(self, request: Request) -> Response:
        raw = await request.body()
        try:
            boundary = boundary_of(request.headers.get("content-type", ""))
            fields = form_fields(raw, boundary, ("model", "response_format"))
        except GatewayError as error:
            return Response(error.body(), error.status_code, media_type="application/json")
        model = fields.values.get("model")
        if model not in self.models:
            return error_response(404, f"The model `{model}` does not exist.", "model_not_found")
        if fields.file_bytes == 0:
            return error_response(400, "The form has no `file`.", "invalid_value")
        output = len(TRANSCRIPT.split())
        if fields.values.get("response_format") == "text":
            return PlainTextResponse(TRANSCRIPT + "\n")
        usage = {
            "type": "tokens",
            "input_tokens": -(-fields.file_bytes // 1024),
            "output_tokens": output,
            "total_tokens": -(-fields.file_bytes // 1024) + output,
        }
        return Response(orjson.dumps({"text": TRANSCRIPT, "usage": usage}), media_type="application/json")


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return []


def _overlap(a: str, b: str) -> float:
    first, second = set(a.lower().split()), set(b.lower().split())
    return round(len(first & second) / max(1, len(first | second)), 6)


def _token_id(word: str) -> int:
    return sum(word.encode()) % 50_000
