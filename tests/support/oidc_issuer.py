"""A tiny, real OIDC issuer for tests: discovery, JWKS, the password grant, the authorization-code flow with
PKCE and a login form, and test-only controls.

oidc-provider-mock issues genuine ID tokens, but cannot set arbitrary claims (expiry, ``nbf``, audience),
rotate its key, count key fetches, run the password grant or check PKCE (0.3.4 ignores
``code_challenge``); this issuer can. Its RSA keys are generated at start. Endpoints:

- ``GET /.well-known/openid-configuration``, ``GET /jwks`` (counted), ``POST /token`` (password grant and
  authorization code).
- ``GET /authorize``: a login form (user name, password) for a registered client and redirect URI; it
  requires a PKCE S256 ``code_challenge``. ``POST /authorize``: checks the password, then redirects to the
  client with a single-use code (valid 60 s) and the ``state``. The token endpoint authenticates the client
  (Basic or form), and refuses a used code, another redirect URI and a ``code_verifier`` whose S256 is not
  the challenge; the ID token has ``aud`` = client id and the request's ``nonce``.
- ``POST /clients`` ``{"client_id", "secret", "redirect_uris"}``: a client (no secret: a public client).
- ``POST /id-token-overrides`` ``{"claims": {...}}``: claims set on the next authorization-code ID token
  only (``null`` removes one): a wrong audience, nonce, an expired token.
- ``POST /mint`` ``{"claims": {...}, "headers": {...}}``: a token signed with the current key; ``iss``,
  ``iat`` and ``exp`` (five minutes) are filled in unless given, and a claim given as ``null`` is left out.
- ``POST /rotate`` ``{"keep_old": false}``: a new current key; the old one stays published only if kept.
- ``POST /users`` ``{"username", "password", "claims"}``: a user for the password grant.
- ``POST /publish-oct`` ``{"kid", "secret"}``: also publish a symmetric key (a misconfigured provider).
- ``POST /hang`` ``{"seconds": 10}``: for that long, ``GET /jwks`` answers only when the time is up (a
  hanging provider); ``0`` ends a hang early, also for the requests it holds.
- ``GET /stats``: ``{"jwks_fetches", "discovery_fetches", "codes_issued", "codes_redeemed",
  "code_refusals", "pkce_verified"}``.

Run as ``python oidc_issuer.py PORT``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import html
import secrets
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlencode

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

_TOKEN_SECONDS = 300
_CODE_SECONDS = 60


@dataclass
class Grant:
    """An issued authorization code's request."""

    client_id: str
    redirect_uri: str
    username: str
    nonce: str | None
    challenge: str
    issued_at: float


@dataclass
class Client:
    secret: str | None
    redirect_uris: list[str]


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
        self.clients: dict[str, Client] = {}
        self.grants: dict[str, Grant] = {}
        self.id_token_overrides: dict[str, Any] = {}
        self.stats = {"codes_issued": 0, "codes_redeemed": 0, "code_refusals": 0, "pkce_verified": 0}
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
                "authorization_endpoint": issuer.url + "/authorize",
                "grant_types_supported": ["password", "authorization_code"],
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
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
            {
                "jwks_fetches": issuer.jwks_fetches,
                "discovery_fetches": issuer.discovery_fetches,
                **issuer.stats,
            }
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

    @routes.post("/clients")
    async def add_client(request: web.Request) -> web.Response:
        data = await request.json()
        issuer.clients[data["client_id"]] = Client(data.get("secret"), list(data["redirect_uris"]))
        return web.json_response({}, status=201)

    @routes.post("/id-token-overrides")
    async def overrides(request: web.Request) -> web.Response:
        issuer.id_token_overrides = dict((await request.json())["claims"])
        return web.json_response({})

    @routes.get("/authorize")
    async def authorize_form(request: web.Request) -> web.Response:
        problem = _authorization_problem(issuer, request.query)
        if problem is not None:
            return _page(400, f"<p>{html.escape(problem)}</p>")
        return _login_form(dict(request.query), error=None)

    @routes.post("/authorize")
    async def authorize(request: web.Request) -> web.Response:
        form = {name: str(value) for name, value in (await request.post()).items()}
        params = {name: form[name] for name in form if name not in ("username", "password")}
        problem = _authorization_problem(issuer, params)
        if problem is not None:
            return _page(400, f"<p>{html.escape(problem)}</p>")
        user = issuer.users.get(form.get("username", ""))
        if user is None or not hmac.compare_digest(user[0], form.get("password", "")):
            return _login_form(params, error="Invalid username or password.")
        code = secrets.token_urlsafe(24)
        issuer.grants[code] = Grant(
            params["client_id"],
            params["redirect_uri"],
            form["username"],
            params.get("nonce"),
            params["code_challenge"],
            time.monotonic(),
        )
        issuer.stats["codes_issued"] += 1
        answer = {"code": code, **({"state": params["state"]} if "state" in params else {})}
        raise web.HTTPFound(params["redirect_uri"] + "?" + urlencode(answer))

    @routes.post("/token")
    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        client_id = str(form.get("client_id", ""))
        client_secret = form.get("client_secret")
        authorization = request.headers.get("authorization", "")
        if authorization.startswith("Basic "):
            basic_id, _, basic_secret = base64.b64decode(authorization[6:]).decode().partition(":")
            client_id, client_secret = unquote(basic_id), unquote(basic_secret)
        if form.get("grant_type") == "authorization_code":
            return _code_grant(issuer, form, client_id, str(client_secret) if client_secret else None)
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


def _authorization_problem(issuer: Issuer, params: Any) -> str | None:
    """Why an authorization request cannot be served (shown to the user, never redirected), or None."""
    client = issuer.clients.get(params.get("client_id", ""))
    if client is None:
        return "Unknown client."
    if params.get("redirect_uri") not in client.redirect_uris:
        return "Invalid parameter: redirect_uri"
    if params.get("response_type") != "code" or "openid" not in params.get("scope", "").split():
        return "Only response_type=code with the openid scope is supported."
    if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
        return "PKCE with code_challenge_method S256 is required."
    return None


def _page(status: int, body: str) -> web.Response:
    document = f"<!doctype html><html><head><title>Test IdP</title></head><body>{body}</body></html>"
    return web.Response(status=status, text=document, content_type="text/html")


def _login_form(params: dict[str, str], error: str | None) -> web.Response:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in params.items()
    )
    shown = f'<p id="error">{html.escape(error)}</p>' if error else ""
    body = (
        f'<h1>Test IdP: sign in</h1>{shown}<form method="post" action="/authorize">{hidden}'
        '<label for="username">Username</label><input id="username" name="username">'
        '<label for="password">Password</label><input id="password" name="password" type="password">'
        '<button type="submit" id="kc-login">Sign in</button></form>'
    )
    return _page(401 if error else 200, body)


def _code_grant(issuer: Issuer, form: Any, client_id: str, secret: str | None) -> web.Response:
    client = issuer.clients.get(client_id)
    if client is None or (client.secret is not None and client.secret != secret):
        issuer.stats["code_refusals"] += 1
        return _oauth_error(401, "invalid_client", "Client authentication failed.")
    grant = issuer.grants.pop(str(form.get("code", "")), None)  # single use, even when refused below
    if grant is None or grant.client_id != client_id or time.monotonic() - grant.issued_at > _CODE_SECONDS:
        issuer.stats["code_refusals"] += 1
        return _oauth_error(400, "invalid_grant", "Code not valid.")
    if form.get("redirect_uri") != grant.redirect_uri:
        issuer.stats["code_refusals"] += 1
        return _oauth_error(400, "invalid_grant", "Incorrect redirect_uri.")
    verifier = str(form.get("code_verifier", ""))
    digest = hashlib.sha256(verifier.encode()).digest()
    if not verifier or base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
        issuer.stats["code_refusals"] += 1
        return _oauth_error(400, "invalid_grant", "PKCE verification failed: code_verifier.")
    issuer.stats["pkce_verified"] += 1
    issuer.stats["codes_redeemed"] += 1
    claims = {
        "sub": grant.username,
        "aud": client_id,
        "nonce": grant.nonce,
        **issuer.users[grant.username][1],
    }
    claims.update(issuer.id_token_overrides)
    issuer.id_token_overrides = {}
    id_token = issuer.mint(claims, {})
    return web.json_response({"access_token": id_token, "id_token": id_token, "token_type": "Bearer"})


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


def main() -> None:
    port = int(sys.argv[1])
    web.run_app(create_app(Issuer(f"http://127.0.0.1:{port}")), host="127.0.0.1", port=port, print=None)


if __name__ == "__main__":
    main()
