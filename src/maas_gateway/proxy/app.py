"""The gateway as an ASGI application: dispatch by path, errors to OpenAI bodies, lifespan.

The hot path is plain ASGI rather than a framework's request objects: the gateway parses what it needs
and forwards bytes (see docs/decisions.md). Every ``GatewayError`` becomes its OpenAI error body here,
and anything unexpected becomes a 500 without a traceback on the wire.
"""

from __future__ import annotations

import gc
import logging
import time
from pathlib import Path

import orjson

from maas_gateway.admin.api import create_admin_app
from maas_gateway.admin.call_log import AdminCallLog
from maas_gateway.admin.json_body import JsonBodyByDefault
from maas_gateway.config import ConfigError, load_config
from maas_gateway.config.schema import GatewayConfig
from maas_gateway.errors import (
    GatewayError,
    InternalError,
    MethodNotAllowedError,
    ModelNotFoundError,
    NotFoundError,
    ServiceUnavailableError,
)
from maas_gateway.http.asgi import Receive, Scope, Send, send_error, send_response
from maas_gateway.proxy.components import Components, build_components
from maas_gateway.proxy.exchange import Exchange, new_request_id
from maas_gateway.proxy.schemas import ENDPOINT_SCHEMAS
from maas_gateway.reload_status import ReloadOutcome

__all__ = ["GatewayApp"]

logger = logging.getLogger("maas_gateway")

_GENERATION = frozenset(ENDPOINT_SCHEMAS)


class GatewayApp:
    def __init__(self, config: GatewayConfig, config_path: Path | None = None) -> None:
        self.components: Components = build_components(config)
        admin_app = JsonBodyByDefault(create_admin_app(self.components.admin_services()))
        pipeline = self.components.pipeline
        self.admin_app = AdminCallLog(admin_app, self.components.observers.access_log, pipeline.address)
        self.config_path = config_path
        self.ready = False
        self._created = int(time.time())

    def reload(self) -> ReloadOutcome:
        """Re-read the configuration file and apply it (SIGHUP, `maas reload`); log and return the outcome."""
        if self.config_path is None:
            logger.warning("Reload asked, but this gateway runs a built-in configuration; nothing to do.")
            return ReloadOutcome(refusal="This gateway runs a built-in configuration, not a file.")
        try:
            config = load_config(self.config_path)
            restart = self.components.reconfigure(config)
        except ConfigError as exc:
            logger.error("Reload refused; the running configuration stays in force. %s", exc)
            return ReloadOutcome(refusal=str(exc))
        logger.info("Reloaded %s: models, keys, tiers and limits are in force.", self.config_path)
        if restart:
            logger.warning("Changes to %s take effect only after a restart.", ", ".join(restart))
        return ReloadOutcome(needs_restart=tuple(restart))

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
                    await self.components.start()
                except Exception as exc:
                    logger.exception("The gateway could not start.")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                _tune_garbage_collector()
                self.ready = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.ready = False
                await self.components.stop()
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
                await self._only(method, ("GET", "HEAD"), send, b'{"status":"ready"}')
            else:
                await send_error(send, ServiceUnavailableError("The gateway is not ready yet."))
            return
        if path == "/metrics" and self.components.metrics_on_api_port is not None:
            await self.components.metrics_on_api_port(scope, receive, send)  # admin only; else 404 below
            return
        if path.startswith(("/admin", "/v1/keys")) or path == "/v1/usage":
            await self.admin_app(scope, receive, send)
            return
        exchange = Exchange(request_id=new_request_id(), method=method, path=path)
        try:
            await self._api(scope, receive, send, exchange, path, method)
        except GatewayError as error:
            exchange.error_code = error.code
            if not exchange.response_started:
                exchange.status = error.status_code
                await send_error(send, error, [(b"x-request-id", exchange.request_id.encode())])
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
            self.components.observers.finished(exchange)

    async def _api(
        self, scope: Scope, receive: Receive, send: Send, exchange: Exchange, path: str, method: str
    ) -> None:
        prefix, api_path = self._split_prefix(path)
        if api_path in _GENERATION:
            _require(method, ("POST",), api_path)
            await self.components.pipeline.generate(scope, receive, send, exchange, api_path, prefix)
        elif api_path == "/v1/models" or api_path.startswith("/v1/models/"):
            _require(method, ("GET",), api_path)
            await self._models(scope, send, exchange, api_path.removeprefix("/v1/models").strip("/"))
        else:
            raise NotFoundError(f"There is no endpoint at {path}.", code="unknown_url")

    def _split_prefix(self, path: str) -> tuple[str | None, str]:
        if path.startswith("/v1/"):
            return None, path
        first, _, rest = path[1:].partition("/")
        if rest.startswith("v1/"):
            return first, "/" + rest
        return None, path

    async def _models(self, scope: Scope, send: Send, exchange: Exchange, model_id: str) -> None:
        identity = await self.components.pipeline.identify(scope)
        exchange.identity = identity
        visible = self.components.router.visible_to(identity)
        entries = [
            {"id": m.name, "object": "model", "created": self._created, "owned_by": m.owned_by}
            for m in visible
        ]
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
        return self.ready and await self.components.healthy()


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
