"""``maas token``: get a bearer token from an OIDC provider with the OAuth2 password grant.

Like the origin system's ``get-token.sh``: the issuer's discovery document names its token endpoint, the
user's name and password are exchanged there for tokens, and the access token is printed so that it can be
used as the API key (``export OPENAI_API_KEY=$(maas token ...)``). The token is only ever printed.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from typing import Annotated, Any

import httpx
import typer

__all__ = ["token"]

PASSWORD_ENV = "MAAS_OIDC_PASSWORD"  # noqa: S105  # the variable's name, not a password


class _Failure(Exception):
    """A whole-sentence message for the user, and the exit code that goes with it."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def token(
    issuer: Annotated[
        str, typer.Option(help="The issuer URL; its discovery document names the token endpoint.")
    ],
    user: Annotated[str, typer.Option(help="The user name.")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, envvar=PASSWORD_ENV, help="The user's password.")
    ],
    client_id: Annotated[str, typer.Option(help="The OAuth2 client the token is for.")] = "maas-gateway",
    client_secret: Annotated[
        str | None, typer.Option(help="The client's secret, for a confidential client.", show_default=False)
    ] = None,
    scope: Annotated[str, typer.Option(help="The scopes to ask for, separated by spaces.")] = "openid",
    id_token: Annotated[
        bool, typer.Option("--id-token", help="Print the ID token instead of the access token.")
    ] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the whole token response as JSON.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each answer.")] = 10.0,
) -> None:
    """Get a token for the gateway from an OIDC provider (password grant) and print it."""
    try:
        if not issuer.startswith(("http://", "https://")):
            raise _Failure("The issuer must be an http:// or https:// URL.", exit_code=2)
        endpoint = _token_endpoint(issuer, timeout)
        form = {"grant_type": "password", "username": user, "password": password, "scope": scope}
        answer = _request_token(endpoint, form, client_id, client_secret, timeout)
    except _Failure as failure:
        typer.secho(str(failure), err=True, fg=typer.colors.RED)
        raise typer.Exit(code=failure.exit_code) from None
    if json_output:
        typer.echo(json.dumps(answer, indent=2))
        return
    field = "id_token" if id_token else "access_token"
    value = answer.get(field)
    if not isinstance(value, str) or not value:
        typer.secho(f"The identity provider's answer has no {field}.", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=1)
    typer.echo(value)


def _token_endpoint(issuer: str, timeout: float) -> str:
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    status, document = _fetch(url, None, {"accept": "application/json"}, timeout)
    if status != 200 or not isinstance(document, dict):
        raise _Failure(f"{issuer} does not publish an OpenID discovery document at {url} (HTTP {status}).")
    endpoint = document.get("token_endpoint")
    if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
        raise _Failure(f"The discovery document at {url} names no token endpoint.")
    return endpoint


def _request_token(
    endpoint: str, form: dict[str, str], client_id: str, client_secret: str | None, timeout: float
) -> dict[str, Any]:
    headers = {"accept": "application/json", "content-type": "application/x-www-form-urlencoded"}
    if client_secret is None:
        form = {**form, "client_id": client_id}
    else:  # client_secret_basic, which every OAuth2 server must support
        pair = f"{urllib.parse.quote(client_id, safe='')}:{urllib.parse.quote(client_secret, safe='')}"
        headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    body = urllib.parse.urlencode(form).encode()
    status, answer = _fetch(endpoint, body, headers, timeout)
    if status == 200 and isinstance(answer, dict):
        return answer
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, str):
        raise _Failure(f"The token endpoint {endpoint} answered HTTP {status} without an OAuth2 error.")
    description = answer.get("error_description") if isinstance(answer, dict) else None
    detail = f"{error}: {description}" if isinstance(description, str) and description else error
    detail = detail.rstrip(".")
    if error in ("invalid_grant", "invalid_client", "unauthorized_client"):
        raise _Failure(f"The identity provider rejected the credentials ({detail}).")
    raise _Failure(f"The identity provider refused to issue a token ({detail}).")


def _fetch(url: str, body: bytes | None, headers: dict[str, str], timeout: float) -> tuple[int, Any]:
    """The status and decoded JSON body (``None`` if not JSON) of a GET, or a POST of ``body``.

    HTTP error statuses are answers like any other; only a failure to get an answer raises.
    """
    if not url.startswith(("http://", "https://")):
        raise _Failure(f"{url} is not an http:// or https:// URL.")
    try:
        response = httpx.request(
            "GET" if body is None else "POST", url, content=body, headers=headers, timeout=timeout
        )
    except httpx.HTTPError as exc:
        raise _Failure(f"Cannot reach the identity provider at {url}: {exc or type(exc).__name__}.") from None
    try:
        return response.status_code, json.loads(response.content)
    except ValueError:
        return response.status_code, None
