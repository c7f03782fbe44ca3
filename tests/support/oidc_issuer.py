"""A tiny, real OIDC issuer for tests: discovery, JWKS, the password grant, and test-only controls.

oidc-provider-mock issues genuine ID tokens, but cannot set arbitrary claims (expiry, ``nbf``, audience),
rotate its key, count key fetches or run the password grant; this issuer can. Its RSA keys are generated at
start. Endpoints:

- ``GET /.well-known/openid-configuration``, ``GET /jwks`` (counted), ``POST /token`` (password grant).
- ``POST /mint`` ``{"claims": {...}, "headers": {...}}``: a token signed with the current key; ``iss``,
  ``iat`` and ``exp`` (five minutes) are filled in unless given, and a claim given as ``null`` is left out.
- ``POST /rotate`` ``{"keep_old": false}``: a new current key; the old one stays published only if kept.
- ``POST /users`` ``{"username", "password", "claims"}``: a user for the password grant.
- ``POST /publish-oct`` ``{"kid", "secret"}``: also publish a symmetric key (a misconfigured provider).
- ``POST /hang`` ``{"seconds": 10}``: for that long, ``GET /jwks`` answers only when the time is up (a
  hanging provider); ``0`` ends a hang early, also for the requests it holds.
- ``GET /stats``: ``{"jwks_fetches", "discovery_fetches"}``.

Run as ``python oidc_issuer.py PORT``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import sys
import time
import uuid
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

_TOKEN_SECONDS = 300


class Issuer:
    def __init__(self, url: str) -> None:
        self.url = url
        self.keys: list[tuple[str, rsa.RSAPrivateKey]] = []
        self.extra_jwks: list[dict[str, Any]] = []
        self.users: dict[str, tuple[str, dict[str, Any]]] = {}
        self.jwks_fetches = 0
        self.discovery_fetches = 0
        self.hang_until = 0.0  # monotonic time until which key requests are held
        self.hang_ended = asyncio.Event()  # set by hang(0), to end a hang early
        self.rotate(keep_old=False)

    def rotate(self, keep_old: bool) -> str:
        kid = uuid.uuid4().hex[:16]
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys = [(kid, key), *(self.keys if keep_old else [])]
        return kid

    def mint(self, claims: dict[str, Any], headers: dict[str, Any]) -> str:
        now = int(time.time())
        body = {"iss": self.url, "iat": now, "exp": now + _TOKEN_SECONDS, **claims}
        body = {name: value for name, value in body.items() if value is not None}
        kid, key = self.keys[0]
        return jwt.encode(body, key, algorithm=headers.pop("alg", "RS256"), headers={"kid": kid, **headers})

    def jwks(self) -> dict[str, Any]:
        published = []
        for kid, key in self.keys:
            jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            published.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": [*published, *self.extra_jwks]}


def create_app(issuer: Issuer) -> web.Application:
    routes = web.RouteTableDef()

    @routes.get("/health")
    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    @routes.get("/.well-known/openid-configuration")
    async def discovery(request: web.Request) -> web.Response:
        issuer.discovery_fetches += 1
        return web.json_response(
            {
                "issuer": issuer.url,
                "jwks_uri": issuer.url + "/jwks",
                "token_endpoint": issuer.url + "/token",
                "grant_types_supported": ["password"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    @routes.get("/jwks")
    async def jwks(request: web.Request) -> web.Response:
        issuer.jwks_fetches += 1
        left = issuer.hang_until - time.monotonic()
        if left > 0:
            with contextlib.suppress(TimeoutError):  # the hang's time is up
                await asyncio.wait_for(issuer.hang_ended.wait(), left)
        return web.json_response(issuer.jwks())

    @routes.post("/hang")
    async def hang(request: web.Request) -> web.Response:
        data = await request.json()
        seconds = float(data["seconds"])
        issuer.hang_until = time.monotonic() + seconds
        if seconds > 0:
            issuer.hang_ended.clear()
        else:
            issuer.hang_ended.set()  # releases the requests held by an earlier hang
        return web.json_response({})

    @routes.get("/stats")
    async def stats(request: web.Request) -> web.Response:
        return web.json_response(
            {"jwks_fetches": issuer.jwks_fetches, "discovery_fetches": issuer.discovery_fetches}
        )

    @routes.post("/mint")
    async def mint(request: web.Request) -> web.Response:
        data = await request.json()
        token = issuer.mint(dict(data.get("claims", {})), dict(data.get("headers", {})))
        return web.json_response({"token": token})

    @routes.post("/rotate")
    async def rotate(request: web.Request) -> web.Response:
        data = await request.json()
        return web.json_response({"kid": issuer.rotate(bool(data.get("keep_old", False)))})

    @routes.post("/users")
    async def add_user(request: web.Request) -> web.Response:
        data = await request.json()
        issuer.users[data["username"]] = (data["password"], dict(data.get("claims", {})))
        return web.json_response({}, status=201)

    @routes.post("/publish-oct")
    async def publish_oct(request: web.Request) -> web.Response:
        data = await request.json()
        secret = base64.urlsafe_b64encode(data["secret"].encode()).rstrip(b"=").decode()
        issuer.extra_jwks.append({"kty": "oct", "kid": data["kid"], "k": secret, "alg": "HS256"})
        return web.json_response({}, status=201)

    @routes.post("/token")
    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        client_id = str(form.get("client_id", ""))
        authorization = request.headers.get("authorization", "")
        if authorization.startswith("Basic "):
            client_id = base64.b64decode(authorization[6:]).decode().partition(":")[0]
        if form.get("grant_type") != "password":
            return _oauth_error(400, "unsupported_grant_type", "Only the password grant is supported.")
        user = issuer.users.get(str(form.get("username", "")))
        if user is None or user[0] != form.get("password") or not client_id:
            return _oauth_error(401, "invalid_grant", "Invalid user credentials")
        claims = {"sub": form["username"], "aud": client_id, **user[1]}
        access = issuer.mint(claims, {})
        return web.json_response(
            {
                "access_token": access,
                "id_token": access,
                "token_type": "Bearer",
                "expires_in": _TOKEN_SECONDS,
                "scope": str(form.get("scope", "openid")),
            }
        )

    app = web.Application()
    app.add_routes(routes)
    return app


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


def main() -> None:
    port = int(sys.argv[1])
    web.run_app(create_app(Issuer(f"http://127.0.0.1:{port}")), host="127.0.0.1", port=port, print=None)


if __name__ == "__main__":
    main()
