"""A vLLM-compatible model server that needs no GPU: its ASGI application and routes.

It speaks the OpenAI/vLLM API shapes (chat, completions, embeddings, models, SSE streaming with
``stream_options.include_usage``; the Responses and Messages APIs, rerank, score, tokenize and audio:
``agent_apis`` and ``utility_apis``), vLLM's operational endpoints (``/health``, ``/ready``, ``/metrics``)
and one of its own, ``POST /sim/health``, which turns the health checks off and on. docs/simulator.md
describes it all. The parts: ``generation`` (what it says), ``engine`` (the queue and the KV cache),
``completions`` (pacing and streaming), ``failures`` and ``metrics``.
"""

from __future__ import annotations

import time
import uuid

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from maas_gateway.simulator.agent_apis import AgentAPIs
from maas_gateway.simulator.completions import Answer, Completions
from maas_gateway.simulator.disconnect import until_disconnected
from maas_gateway.simulator.engine import Engine
from maas_gateway.simulator.failures import (
    CutResponse,
    Failures,
    context_length_error,
    hide_cuts_from_server_log,
)
from maas_gateway.simulator.generation import completion_tokens, embedding, prompt_tokens
from maas_gateway.simulator.latency import Latency
from maas_gateway.simulator.metrics import CONTENT_TYPE, SimulatorMetrics
from maas_gateway.simulator.parsing import (
    BadRequest,
    embedding_inputs,
    last_user_text,
    max_tokens_of,
    read_body,
)
from maas_gateway.simulator.settings import FailureType, SimulatorSettings
from maas_gateway.simulator.shapes import error_response, json_response
from maas_gateway.simulator.utility_apis import UtilityAPIs
from maas_gateway.tokens import estimate_tokens, prompt_text

__all__ = ["create_simulator_app"]

# What a handler returns for a client that has gone away: nothing is sent (nginx's code for it).
_CLIENT_GONE = 499


class _Simulator:
    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self.started = int(time.time())
        self.healthy = True
        self.engine = Engine(settings.max_num_seqs, settings.kv_cache_tokens)
        # vLLM labels its metrics with the first served model name.
        self.metrics = SimulatorMetrics(self.engine, settings.models[0])
        latency = Latency(
            settings.time_to_first_token,
            settings.time_to_first_token_std,
            settings.inter_token_latency,
            settings.inter_token_latency_std,
            settings.rng,
        )
        self.completions = Completions(self.engine, latency, self.metrics)
        self.agents = AgentAPIs(settings, latency)
        self.utilities = UtilityAPIs(settings)
        self.failures = Failures(settings)

    async def chat(self, request: Request) -> Response:
        return await self._generate(request, chat=True)

    async def text_completions(self, request: Request) -> Response:
        return await self._generate(request, chat=False)

    async def _generate(self, request: Request, *, chat: bool) -> Response:
        settings = self.settings
        param = "messages" if chat else "prompt"
        try:
            body = await read_body(request, settings.models)
            failure = self.failures.draw()
            text = prompt_text(body)
            prompt = prompt_tokens(text)
            if failure is not None:
                early = await self._fail_early(request, failure, body, prompt, param)
                if early is not None:
                    return early
            max_tokens = max_tokens_of(body)
        except BadRequest as exc:
            return exc.response()
        too_long = context_length_error(settings.max_model_len, prompt, max_tokens, param)
        if too_long is not None:
            return too_long
        room = settings.max_model_len - prompt
        tokens, finish = completion_tokens(settings, last_user_text(body) if chat else text, max_tokens, room)
        generated = len(tokens)
        usage = {"prompt_tokens": prompt, "completion_tokens": generated, "total_tokens": prompt + generated}
        ident = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
        answer = Answer(ident, body["model"], chat, tokens, finish, usage)
        cut = failure == "cut"
        if body.get("stream") is True:
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            return self.completions.stream(answer, include_usage=include_usage, cut=cut)
        whole = await self.completions.whole(answer, request.receive, cut=cut)
        return whole or Response(status_code=_CLIENT_GONE)

    async def _fail_early(
        self, request: Request, failure: FailureType, body: dict[str, object], prompt: int, param: str
    ) -> Response | None:
        """The answer to a failure that comes before any generation (all but ``cut``); ``param`` names
        the field that holds the prompt."""
        refusal = self.failures.refusal(failure, str(body["model"]), prompt, param)
        if refusal is not None:
            return refusal
        if failure == "hang":
            await until_disconnected(request.receive)
            return Response(status_code=_CLIENT_GONE)
        return None

    async def embeddings(self, request: Request) -> Response:
        try:
            body = await read_body(request, self.settings.embedding_models)
        except BadRequest as exc:
            return exc.response()
        failure = self.failures.draw()
        if failure is not None:
            prompt = prompt_tokens(prompt_text(body))
            early = await self._fail_early(request, failure, body, prompt, "input")
            if early is not None:
                return early
        texts = embedding_inputs(body.get("input"))
        if texts is None:
            return error_response(400, "`input` must be a string or a list of strings.", "invalid_value")
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            return error_response(400, "`encoding_format` must be 'float' or 'base64'.", "invalid_value")
        dims = self.settings.embedding_dimensions
        data = [
            {"object": "embedding", "index": i, "embedding": embedding(text, dims, encoding)}
            for i, text in enumerate(texts)
        ]
        used = sum(max(1, estimate_tokens(text)) for text in texts)
        usage = {"prompt_tokens": used, "total_tokens": used}
        answer = orjson.dumps({"object": "list", "data": data, "model": body["model"], "usage": usage})
        if failure == "cut":
            return CutResponse(answer, media_type="application/json")
        return Response(answer, media_type="application/json")

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
        return json_response({"object": "list", "data": data})

    async def health(self, request: Request) -> Response:
        """The health and readiness checks: 200 with an empty body as vLLM's, or 503 once
        `POST /sim/health` says so."""
        return Response(b"", 200 if self.healthy else 503)

    async def set_health(self, request: Request) -> Response:
        """`{"healthy": false}` makes /health and /ready answer 503, `{"healthy": true}` 200 again."""
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            body = None
        healthy = body.get("healthy") if isinstance(body, dict) else None
        if not isinstance(healthy, bool):
            message = 'The body must be {"healthy": true} or {"healthy": false}.'
            return error_response(400, message, "invalid_value")
        self.healthy = healthy
        return json_response({"healthy": healthy})

    async def scrape(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=CONTENT_TYPE)


def create_simulator_app(settings: SimulatorSettings | None = None) -> Starlette:
    simulator = _Simulator(settings or SimulatorSettings())
    hide_cuts_from_server_log()
    routes = [
        Route("/v1/chat/completions", simulator.chat, methods=["POST"]),
        Route("/v1/completions", simulator.text_completions, methods=["POST"]),
        Route("/v1/embeddings", simulator.embeddings, methods=["POST"]),
        Route("/v1/models", simulator.models, methods=["GET"]),
        Route("/v1/responses", simulator.agents.create_response, methods=["POST"]),
        Route("/v1/responses/{response_id}", simulator.agents.stored_response, methods=["GET", "DELETE"]),
        Route("/v1/messages", simulator.agents.messages, methods=["POST"]),
        Route("/v1/rerank", simulator.utilities.rerank, methods=["POST"]),
        Route("/v2/rerank", simulator.utilities.rerank, methods=["POST"]),
        Route("/v1/score", simulator.utilities.score, methods=["POST"]),
        Route("/tokenize", simulator.utilities.tokenize, methods=["POST"]),
        Route("/detokenize", simulator.utilities.detokenize, methods=["POST"]),
        Route("/v1/audio/transcriptions", simulator.utilities.audio, methods=["POST"]),
        Route("/v1/audio/translations", simulator.utilities.audio, methods=["POST"]),
        Route("/health", simulator.health, methods=["GET"]),
        Route("/ready", simulator.health, methods=["GET"]),
        Route("/metrics", simulator.scrape, methods=["GET"]),
        Route("/sim/health", simulator.set_health, methods=["POST"]),
    ]
    return Starlette(routes=routes)
