"""The gateway as an ASGI application: dispatch by path, errors to OpenAI bodies, lifespan.

The hot path is plain ASGI rather than a framework's request objects: the gateway parses what it needs
and forwards bytes (see docs/decisions.md). Every ``GatewayError`` becomes its OpenAI error body here,
and anything unexpected becomes a 500 without a traceback on the wire.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from typing import Protocol

import orjson

from maas_gateway.errors import (
    GatewayError,
    InternalError,
    MethodNotAllowedError,
    ModelNotFoundError,
    NotFoundError,
    ServiceUnavailableError,
)
from maas_gateway.http.asgi import ASGIApp, Receive, Scope, Send, send_error, send_response
from maas_gateway.proxy.endpoints import ENDPOINTS, ErrorShape, extra_endpoint, split_prefix
from maas_gateway.proxy.error_shapes import error_body
from maas_gateway.proxy.exchange import Exchange, new_request_id
from maas_gateway.proxy.pipeline import Pipeline
from maas_gateway.proxy.snapshot import Snapshot
from maas_gateway.proxy.stored_responses import STORED_RESPONSE, serve_stored_response
from maas_gateway.reload_status import ReloadOutcome

__all__ = ["GatewayApp", "Lifecycle"]

logger = logging.getLogger("maas_gateway")


class Lifecycle(Protocol):
    """What the application root does when the server starts and stops, whether it can serve, and a
    reload of its configuration file."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def healthy(self) -> bool: ...

    def reload_file(self) -> ReloadOutcome: ...


class GatewayApp:
    """The ASGI edge. It owns nothing: the application root hands it the parts it dispatches to.

    ``current`` returns the configuration snapshot in force; each request reads it once.
    """

    def __init__(
        self,
        current: Callable[[], Snapshot],
        pipeline: Pipeline,
        admin_app: ASGIApp,
        lifecycle: Lifecycle,
        metrics_endpoint: ASGIApp | None = None,
        *,
        portal_app: ASGIApp | None = None,
    ) -> None:
        self.current = current
        self.pipeline = pipeline
        self.admin_app = admin_app
        self.lifecycle = lifecycle
        self.metrics_endpoint = metrics_endpoint  # /metrics on the API port: admin only, when configured
        self.portal_app = portal_app  # /portal/ and the redirect from /; it answers 404 while switched off
        self.ready = False
        self._created = int(time.time())

    def reload(self) -> ReloadOutcome:
        """Re-read the configuration file and put it in force (SIGHUP in a `--workers` process)."""
        return self.lifecycle.reload_file()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.lifecycle.start()
                except Exception as exc:
                    logger.exception("The gateway could not start.")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                _tune_garbage_collector()
                self.ready = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.ready = False
                await self.lifecycle.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path == "/health":
            await self._only(method, ("GET", "HEAD"), send, b'{"status":"ok"}')
            return
        if path == "/ready":
            if await self._is_ready():
                # Ready whatever the backends: a model without one still has fallbacks or panic mode.
                backends = self.current().backends.values()
                unavailable = sum(not model.has_available() for model in backends)
                body = orjson.dumps({"status": "ready", "models_without_available_backends": unavailable})
                await self._only(method, ("GET", "HEAD"), send, body)
            else:
                await send_error(send, ServiceUnavailableError("The gateway is not ready yet."))
            return
        if path == "/metrics" and self.metrics_endpoint is not None:
            await self.metrics_endpoint(scope, receive, send)  # admin only; else 404 below
            return
        if path.startswith(("/admin", "/v1/keys", "/v1/plan-requests")) or path == "/v1/usage":
            await self.admin_app(scope, receive, send)
            return
        if (path.startswith("/portal/") or path in ("/", "/portal")) and self.portal_app is not None:
            await self.portal_app(scope, receive, send)  # a prefix test: the API path does no portal work
            return
        snapshot = self.current()  # once: the request finishes under the configuration it started with
        exchange = Exchange(request_id=new_request_id(), method=method, path=path)
        try:
            await self._api(snapshot, scope, receive, send, exchange, path, method)
        except GatewayError as error:
            exchange.error_code = error.code
            if not exchange.response_started:
                exchange.status = error.status_code
                own = [(b"x-request-id", exchange.request_id.encode())]
                if exchange.served_model is not None:
                    own.append((b"x-maas-served-model", exchange.served_model.encode()))
                endpoint = ENDPOINTS.get(exchange.endpoint)
                shape = endpoint.errors if endpoint is not None else ErrorShape.OPENAI
                await send_error(send, error, own, error_body(error, shape))
        except Exception:
            logger.exception("Unexpected failure in request %s.", exchange.request_id)
            exchange.error_code = InternalError.code
            if not exchange.response_started:
                exchange.status = 500
                failure = InternalError(
                    f"The gateway failed to handle this request (request id {exchange.request_id})."
                )
                await send_error(send, failure)
        finally:
            snapshot.observers.finished(exchange)

    async def _api(
        self,
        snapshot: Snapshot,
        scope: Scope,
        receive: Receive,
        send: Send,
        exchange: Exchange,
        path: str,
        method: str,
    ) -> None:
        extra_paths = snapshot.router.extra_paths
        prefix, api_path = split_prefix(path, extra_paths)
        endpoint = ENDPOINTS.get(api_path)
        if endpoint is not None:
            exchange.endpoint = endpoint.path  # errors from here on take the endpoint's API's shape
            _require(method, ("POST",), api_path)
            await self.pipeline.generate(snapshot, scope, receive, send, exchange, endpoint, prefix)
        elif api_path == "/v1/models" or api_path.startswith("/v1/models/"):
            _require(method, ("GET",), api_path)
            model_id = api_path.removeprefix("/v1/models").strip("/")
            await self._models(snapshot, scope, send, exchange, model_id)
        elif api_path.startswith("/v1/responses/") and prefix is None:
            exchange.endpoint = STORED_RESPONSE
            identity = await self.pipeline.identify(snapshot, scope)
            exchange.identity = identity
            pipeline = self.pipeline
            await serve_stored_response(
                pipeline.transport, pipeline.responses, snapshot, scope, send, exchange, api_path
            )
        elif api_path in extra_paths:
            _require(method, ("POST",), api_path)
            await self.pipeline.generate(
                snapshot, scope, receive, send, exchange, extra_endpoint(api_path), prefix
            )
        else:
            raise NotFoundError(f"There is no endpoint at {path}.", code="unknown_url")

    async def _models(
        self, snapshot: Snapshot, scope: Scope, send: Send, exchange: Exchange, model_id: str
    ) -> None:
        identity = await self.pipeline.identify(snapshot, scope)
        exchange.identity = identity
        visible = snapshot.router.visible_to(identity)
        entries: list[dict[str, object]] = []
        for m in visible:
            entry: dict[str, object] = {
                "id": m.name,
                "object": "model",
                "created": self._created,
                "owned_by": m.owned_by,
            }
            if m.max_model_len is not None:
                entry["max_model_len"] = m.max_model_len
            entries.append(entry)
        if model_id:
            match = [entry for entry in entries if entry["id"] == model_id]
            if not match:
                raise ModelNotFoundError(f"The model '{model_id}' does not exist.")
            body = orjson.dumps(match[0])
        else:
            body = orjson.dumps({"object": "list", "data": entries})
        exchange.status = 200
        await send_response(send, 200, body, [(b"x-request-id", exchange.request_id.encode())])

    async def _only(
        self,
        method: str,
        allowed: tuple[str, ...],
        send: Send,
        body: bytes,
        content_type: bytes = b"application/json",
    ) -> None:
        if method not in allowed:
            await send_error(send, _method_error(method, allowed))
            return
        await send_response(send, 200, body, content_type=content_type)

    async def _is_ready(self) -> bool:
        return self.ready and await self.lifecycle.healthy()


def _tune_garbage_collector() -> None:
    """Keep full collections of start-up objects off the request path.

    After startup about 100,000 long-lived objects (modules, configuration, pools) exist, and a full
    collection walking them takes tens of milliseconds: the p99 tail in bench/. Freezing them moves them
    out of the collector's view. The first threshold is raised moderately (700 to 5,000): young
    collections run less often but stay short; 50,000 made each one stall a request (bench/).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(5_000, 10, 10)


def _require(method: str, allowed: tuple[str, ...], path: str) -> None:
    if method not in allowed:
        raise _method_error(method, allowed, path)


def _method_error(method: str, allowed: tuple[str, ...], path: str = "this URL") -> MethodNotAllowedError:
    return MethodNotAllowedError(
        f"The method {method} is not allowed on {path}; use {' or '.join(allowed)}.",
        allowed=allowed,
    )
