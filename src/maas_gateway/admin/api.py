"""The admin API (``/admin/...``) and the caller's own usage (``/v1/usage``), as a FastAPI app.

FastAPI is used here, off the hot path, for its OpenAPI document (``/admin/openapi.json``) and request
validation; the model endpoints stay plain ASGI. Errors keep OpenAI's shape.
"""

# No `from __future__ import annotations` here: FastAPI must see the dependency closures
# (Depends(caller)) in the annotations as objects, not as strings naming locals.

import logging
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from maas_gateway.admin.actors import actor_of
from maas_gateway.admin.audit_api import audit_router
from maas_gateway.admin.call_log import caller_of
from maas_gateway.admin.focus import focus_csv
from maas_gateway.admin.keys_api import keys_router
from maas_gateway.admin.nul_guard import refuse_nul_characters
from maas_gateway.admin.plans_api import plans_router
from maas_gateway.admin.reconcile_api import reconcile_router
from maas_gateway.admin.services import AdminServices
from maas_gateway.admin.swagger import serve_swagger_ui
from maas_gateway.admin.teams_api import teams_router
from maas_gateway.admin.usage import rows_to_csv, usage_query
from maas_gateway.admin.users_api import users_router
from maas_gateway.audit.entries import Actor
from maas_gateway.auth import Identity, parse_authorization
from maas_gateway.auth.oidc import looks_like_jwt
from maas_gateway.errors import (
    AuthenticationError,
    GatewayError,
    InvalidRequestError,
    PermissionDeniedError,
    error_body,
)

__all__ = ["create_admin_app"]

logger = logging.getLogger("maas_gateway.admin")

Since = Annotated[str | None, Query(description="Start, inclusive: Unix seconds or ISO 8601 (UTC).")]
Until = Annotated[str | None, Query(description="End, exclusive: Unix seconds or ISO 8601 (UTC).")]
GroupBy = Annotated[
    str | None, Query(description="Comma-separated: user, team, tier, model, endpoint, day, hour.")
]
Format = Annotated[
    str,
    Query(pattern="^(json|csv|focus)$", description="json (default), csv, or focus (a FOCUS-style CSV)."),
]
Month = Annotated[
    str | None, Query(description="A calendar month in UTC, `2026-11`: replaces `since` and `until`.")
]


def create_admin_app(services: AdminServices) -> FastAPI:
    app = FastAPI(
        title="maas-gateway admin API",
        version="1",
        openapi_url="/admin/openapi.json",
        docs_url=None,  # served from the package below, not from a CDN
        redoc_url=None,
        dependencies=[Depends(refuse_nul_characters)],  # before any store sees one (admin/nul_guard.py)
    )
    serve_swagger_ui(app, docs_url="/admin/docs", openapi_url="/admin/openapi.json", title=app.title)

    # `authorization` is declared for the OpenAPI document; `identify` reads it from the scope.
    async def caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> Identity:
        """The caller's API key or token, refused first while their address is throttled."""
        identity = await services.identify(request.scope)
        caller_of(request.scope).accept(identity)
        return identity

    async def admin(request: Request, authorization: Annotated[str | None, Header()] = None) -> None:
        """The admin key, or a token of a user in one of the issuer's admin groups."""
        address = services.address(request.scope)
        failures = services.failures
        failures.check(address)  # before the credential: a throttled guesser learns nothing
        credential = parse_authorization(authorization)
        try:
            if looks_like_jwt(credential) and not services.guard().matches(credential):
                identity = await services.authenticate(credential)
                if not identity.is_admin:
                    raise PermissionDeniedError(
                        "This token's user is not in an admin group.", code="not_an_admin"
                    )
                caller_of(request.scope).accept(identity, admin=True)
                return
            services.guard().check(credential)
        except AuthenticationError as error:
            if (user := await user_key(credential)) is not None:
                caller_of(request.scope).accept(user)
                raise PermissionDeniedError(
                    "This API key's user is not an administrator: the admin API needs the admin key or a "
                    "token of a user in an admin group.",
                    code="not_an_admin",
                ) from None
            failures.failed(address)
            logger.warning("A failed admin authentication from %s (%s).", address, error.code)
            raise
        caller_of(request.scope).accept_admin_key()

    async def user_key(credential: str) -> Identity | None:
        """The user of a valid API key that is not the admin key: refused with 403, as a credential
        without the authority, rather than counted as a guess of the admin key."""
        if looks_like_jwt(credential):
            return None  # a token was authenticated above already
        try:
            return await services.authenticate(credential)
        except GatewayError:
            return None

    async def actor(request: Request, _: Annotated[None, Depends(admin)]) -> Actor:
        """The administrator acting, for the audit log (after ``admin`` accepted them)."""
        return actor_of(caller_of(request.scope), services.address(request.scope))

    async def flushed_usage(
        since: str | None,
        until: str | None,
        group_by: str | None,
        user: str | None,
        fmt: str,
        month: str | None = None,
    ) -> Response:
        query = usage_query(since, until, group_by, user, month)
        await services.ledger.flush()  # so a report includes requests answered a moment ago
        rows = await services.ledger.store.aggregate(query)
        if fmt == "csv":
            return PlainTextResponse(rows_to_csv(rows, query.group_by), media_type="text/csv")
        if fmt == "focus":
            report = focus_csv(rows, query, services.config().pricing.currency)
            return PlainTextResponse(report, media_type="text/csv")
        data = [row.as_dict() for row in rows]
        return JSONResponse({"object": "list", "since": query.since, "until": query.until, "data": data})

    @app.get("/admin/usage", dependencies=[Depends(admin)], tags=["usage"])
    async def all_usage(
        since: Since = None,
        until: Until = None,
        group_by: GroupBy = None,
        user: Annotated[str | None, Query(description="Only this user.")] = None,
        format: Format = "json",
        month: Month = None,
    ) -> Response:
        """Usage of every user, aggregated by the chosen groups over a time range (or a `month`);
        `group_by=team,model` is a chargeback report, `format=focus` its FOCUS-style CSV."""
        return await flushed_usage(since, until, group_by, user, format, month)

    @app.get("/v1/usage", tags=["usage"])
    async def own_usage(
        identity: Annotated[Identity, Depends(caller)],
        since: Since = None,
        until: Until = None,
        group_by: GroupBy = None,
        format: Format = "json",
    ) -> Response:
        """The caller's own usage, with their own API key."""
        return await flushed_usage(since, until, group_by or "model,day", identity.user, format)

    app.include_router(keys_router(services, admin, caller, actor))
    app.include_router(users_router(services, admin, actor))
    app.include_router(plans_router(services, admin, caller, actor))
    app.include_router(audit_router(services, admin))
    app.include_router(reconcile_router(services, admin))
    app.include_router(teams_router(services, admin, actor))

    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, exc: GatewayError) -> Response:
        caller_of(request.scope).error = exc.code
        return Response(exc.body(), exc.status_code, exc.headers(), media_type="application/json")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first: dict[str, Any] = exc.errors()[0] if exc.errors() else {"loc": [], "msg": "invalid"}
        field = ".".join(str(part) for part in first["loc"][1:]) or "request"
        error = InvalidRequestError(f"The parameter `{field}` is invalid: {first['msg']}.", param=field)
        if _not_an_object(first):
            message = "The request body must be a JSON object."
            if first.get("type") == "json_invalid":
                message = "The request body is not valid JSON; it must be a JSON object."
            error = InvalidRequestError(message, code="invalid_json")
        caller_of(request.scope).error = error.code
        return Response(error.body(), 400, media_type="application/json")

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception) -> Response:
        caller_of(request.scope).error = "unknown_url"
        body = error_body(
            f"There is no endpoint at {request.url.path}.", "invalid_request_error", "unknown_url"
        )
        return Response(body, 404, media_type="application/json")

    return app


def _not_an_object(error: dict[str, Any]) -> bool:
    """The body as a whole is wrong: not JSON, or JSON but not an object (a list, a string, nothing)."""
    location = tuple(error.get("loc", ()))
    return location[:1] == ("body",) and (error.get("type") == "json_invalid" or len(location) == 1)
