"""The Responses API and Anthropic's Messages API in the simulator, whole and streamed, in the shapes vLLM
serves them: the Responses API's typed events ending in ``response.completed`` (which carries usage),
and the Messages API's ``message_start`` ... ``message_delta`` (usage in both) ... ``message_stop``.

Responses are stored (as vLLM does with ``store``), so ``GET`` and ``DELETE /v1/responses/{id}`` find
them, on this simulator only. Streams are paced by the simulator's latency settings, so a client can
leave one half-way.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from maas_gateway.simulator.generation import completion_tokens, prompt_tokens
from maas_gateway.simulator.latency import Latency
from maas_gateway.simulator.parsing import BadRequest, read_body
from maas_gateway.simulator.settings import SimulatorSettings
from maas_gateway.simulator.shapes import error_response, json_response
from maas_gateway.tokens import prompt_text

__all__ = ["AgentAPIs"]

_STORED = 10_000
_ENDING = {"completed": "response.completed", "incomplete": "response.incomplete"}


class AgentAPIs:
    def __init__(self, settings: SimulatorSettings, latency: Latency) -> None:
        self.settings = settings
        self.latency = latency
        self.stored: dict[str, dict[str, Any]] = {}

    async def create_response(self, request: Request) -> Response:
        try:
            body = await read_body(request, self.settings.models)
            tokens, prompt, finish = self._generate(body, "max_output_tokens", _last_input_text(body))
        except BadRequest as exc:
            return exc.response()
        previous = body.get("previous_response_id")
        if previous is not None and previous not in self.stored:
            # As vLLM: a conversation continues only on the server that stored its previous response.
            return error_response(404, f"Response with id '{previous}' not found.", "not_found")
        ident = "resp_" + uuid.uuid4().hex
        usage = {
            "input_tokens": prompt,
            "output_tokens": len(tokens),
            "total_tokens": prompt + len(tokens),
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        }
        status = "completed" if finish == "stop" else "incomplete"
        whole = _response(ident, body["model"], "".join(tokens), status, usage)
        if body.get("store", True) is not False:
            self.stored[ident] = whole
            while len(self.stored) > _STORED:
                del self.stored[next(iter(self.stored))]
        if body.get("stream") is True:
            return self._stream(_response_events(whole, tokens))
        return json_response(whole)

    async def stored_response(self, request: Request) -> Response:
        ident = request.path_params["response_id"]
        found = self.stored.get(ident)
        if found is None:
            return error_response(404, f"Response with id '{ident}' not found.", "not_found")
        if request.method == "DELETE":
            del self.stored[ident]
            return json_response({"id": ident, "object": "response.deleted", "deleted": True})
        return json_response(found)

    async def messages(self, request: Request) -> Response:
        try:
            body = await read_body(request, self.settings.models)
            tokens, prompt, finish = self._generate(body, "max_tokens", _last_user_text(body))
        except BadRequest as exc:
            return _anthropic_error(exc.status, exc.message)
        ident = "msg_" + uuid.uuid4().hex
        text = "".join(tokens)
        stop = "end_turn" if finish == "stop" else "max_tokens"
        whole = {
            "id": ident,
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": len(tokens)},
        }
        if body.get("stream") is True:
            return self._stream(_message_events(whole, tokens))
        return json_response(whole)

    def _generate(self, body: dict[str, Any], cap_field: str, text: str) -> tuple[list[str], int, str]:
        cap = body.get(cap_field)
        if cap is not None and (not isinstance(cap, int) or isinstance(cap, bool) or cap < 1):
            raise BadRequest(400, f"`{cap_field}` must be a positive integer.", "invalid_value")
        prompt = prompt_tokens(prompt_text(body))
        room = self.settings.max_model_len - prompt
        if room < 1:
            raise BadRequest(400, "The prompt is longer than the model's context.", "context_length_exceeded")
        tokens, finish = completion_tokens(self.settings, text, cap, room)
        return tokens, prompt, finish

    def _stream(self, events: list[tuple[str, dict[str, Any], bool]]) -> StreamingResponse:
        return StreamingResponse(self._paced(events), media_type="text/event-stream")

    async def _paced(self, events: list[tuple[str, dict[str, Any], bool]]) -> AsyncIterator[bytes]:
        """Each event as SSE; a token's event waits the latency settings' time first."""
        first = True
        for kind, payload, is_token in events:
            if is_token and not self.latency.instant:
                delay = self.latency.time_to_first_token() if first else self.latency.inter_token()
                first = False
                if delay > 0:
                    await asyncio.sleep(delay)
            yield b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def _response(ident: str, model: str, text: str, status: str, usage: dict[str, Any]) -> dict[str, Any]:
    message = {
        "id": "msg_" + ident.removeprefix("resp_"),
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }
    return {
        "id": ident,
        "object": "response",
        "created_at": int(time.time()),
        "model": model,
        "status": status,
        "output": [message],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
    }


def _response_events(whole: dict[str, Any], tokens: list[str]) -> list[tuple[str, dict[str, Any], bool]]:
    item = whole["output"][0]
    ids = {"item_id": item["id"], "output_index": 0}
    part = {"type": "output_text", "text": "", "annotations": []}
    started = {**whole, "status": "in_progress", "output": [], "usage": None}
    events: list[tuple[str, dict[str, Any], bool]] = [
        ("response.created", {"response": started}, False),
        ("response.in_progress", {"response": started}, False),
        ("response.output_item.added", {"output_index": 0, "item": {**item, "content": []}}, False),
        ("response.content_part.added", {**ids, "content_index": 0, "part": part}, False),
    ]
    for token in tokens:
        delta = {**ids, "content_index": 0, "delta": token, "logprobs": []}
        events.append(("response.output_text.delta", delta, True))
    text = item["content"][0]["text"]
    events += [
        ("response.output_text.done", {**ids, "content_index": 0, "text": text, "logprobs": []}, False),
        ("response.content_part.done", {**ids, "content_index": 0, "part": item["content"][0]}, False),
        ("response.output_item.done", {"output_index": 0, "item": item}, False),
        (
            "response.completed" if whole["status"] == "completed" else "response.incomplete",
            {"response": whole},
            False,
        ),
    ]
    return [
        (kind, {"type": kind, "sequence_number": n, **data}, token)
        for n, (kind, data, token) in enumerate(events)
    ]


def _message_events(whole: dict[str, Any], tokens: list[str]) -> list[tuple[str, dict[str, Any], bool]]:
    usage = whole["usage"]
    start = {**whole, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 0}}
    events: list[tuple[str, dict[str, Any], bool]] = [
        ("message_start", {"message": start}, False),
        ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}, False),
        ("ping", {}, False),
    ]
    for token in tokens:
        events.append(
            ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": token}}, True)
        )
    delta = {"stop_reason": whole["stop_reason"], "stop_sequence": None}
    events += [
        ("content_block_stop", {"index": 0}, False),
        ("message_delta", {"delta": delta, "usage": {"output_tokens": usage["output_tokens"]}}, False),
        ("message_stop", {}, False),
    ]
    return [(kind, {"type": kind, **data}, token) for kind, data, token in events]


def _last_input_text(body: dict[str, Any]) -> str:
    value = body.get("input")
    if isinstance(value, list) and value:
        value = value[-1]
        value = value.get("content") if isinstance(value, dict) else value
    return prompt_text({"input": value})


def _last_user_text(body: dict[str, Any]) -> str:
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return prompt_text({"messages": [message]})
    return ""


def _anthropic_error(status: int, message: str) -> Response:
    kind = {401: "authentication_error", 404: "not_found_error"}.get(status, "invalid_request_error")
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return Response(orjson.dumps(body), status, media_type="application/json")
