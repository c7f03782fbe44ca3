"""Checking a running gateway end to end, as the origin's verify-install.sh did.

The checks: the gateway is alive and ready; a request without a key, or with a wrong key, gets 401;
each given key gets 200 with the x-ratelimit-* headers; a key sent requests until it is refused reaches
429 with Retry-After; and another key sent long answers reaches its token limit. Every loop is bounded
(``max_requests``), so a gateway whose limits are off fails with a line that says so.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Literal

import httpx

__all__ = ["DEMO_KEYS", "RATE_LIMIT_HEADERS", "Check", "VerifyOptions", "run", "run_checks"]

DEMO_KEYS = (
    ("the free key", "freeuser1_key"),
    ("the premium key", "premiumuser1_key"),
    ("the enterprise key", "enterpriseuser1_key"),
)
RATE_LIMIT_HEADERS = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "x-ratelimit-consumed-tokens",
)
_LONG_PROMPT = "Count from 1 to 1000, one number per line, and say nothing else."
_NOT_A_KEY = "maas-verify-not-a-key"


@dataclass(frozen=True)
class Check:
    name: str
    outcome: Literal["pass", "fail", "skip"]
    detail: str


@dataclass(frozen=True)
class VerifyOptions:
    url: str
    keys: tuple[tuple[str, str], ...]  # (label such as "the free key", key)
    model: str | None = None
    host: str | None = None  # a Host header, to reach a model host through an ingress by address
    max_requests: int = 100
    max_tokens: int = 256
    timeout: float = 60.0


@dataclass(frozen=True)
class _Reply:
    status: int
    headers: dict[str, str]
    body: Any

    def message(self) -> str:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        return "(no error message)"

    def header_int(self, name: str) -> int | None:
        value = self.headers.get(name, "")
        return int(value) if value.isdigit() else None

    def limit_kind(self) -> str:
        """Which limit a 429 reports: "requests", "tokens" or "unknown"."""
        text = self.message()
        if text.startswith("Request limit") or self.headers.get("x-ratelimit-remaining-requests") == "0":
            return "requests"
        if text.startswith("Token limit") or self.headers.get("x-ratelimit-remaining-tokens") == "0":
            return "tokens"
        return "unknown"


class _Unreachable(Exception):
    pass


class _Client:
    def __init__(self, session: httpx.AsyncClient, options: VerifyOptions) -> None:
        self.session = session
        self.base = options.url.rstrip("/").removesuffix("/v1")
        self.host = options.host

    async def call(self, method: str, path: str, key: str | None = None, body: Any = None) -> _Reply:
        headers = {"Host": self.host} if self.host else {}
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        try:
            response = await self.session.request(method, self.base + path, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise _Unreachable(f"{method} {self.base}{path} failed: {exc or type(exc).__name__}") from None
        lowered = {name.lower(): value for name, value in response.headers.items()}
        return _Reply(response.status_code, lowered, _json(response.text))

    async def chat(self, key: str | None, model: str, max_tokens: int, prompt: str = "Hello") -> _Reply:
        body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens}
        return await self.call("POST", "/v1/chat/completions", key, body)


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


async def run_checks(options: VerifyOptions) -> list[Check]:
    """Run every check against ``options.url`` and return them in order."""
    checks: list[Check] = []
    # No proxy variables: the gateway under test is named by address, as curl would reach it.
    async with httpx.AsyncClient(timeout=options.timeout, trust_env=False) as session:
        try:
            await _run(_Client(session, options), options, checks)
        except _Unreachable as exc:
            checks.append(Check("gateway reachable", "fail", f"Cannot reach the gateway: {exc}."))
    return checks


async def _run(client: _Client, options: VerifyOptions, checks: list[Check]) -> None:
    for path in ("/health", "/ready"):
        reply = await client.call("GET", path)
        ok = reply.status == 200
        detail = "200" if ok else f"{reply.status} instead of 200: {reply.message()}"
        checks.append(Check(f"GET {path}", "pass" if ok else "fail", detail))
    model = options.model or await _pick_model(client, options.keys, checks)
    if model is None:
        return
    for name, key in (("no key is refused", None), ("a wrong key is refused", _NOT_A_KEY)):
        reply = await client.chat(key, model, max_tokens=1)
        ok = reply.status == 401
        detail = "401" if ok else f"{reply.status} instead of 401: the gateway lets unknown callers in."
        checks.append(Check(name, "pass" if ok else "fail", detail))
    answered: list[tuple[str, str, _Reply]] = []
    spent: list[tuple[str, str, _Reply]] = []  # refused at once: an earlier run spent the window's quota
    for label, key in options.keys:
        reply = await client.chat(key, model, max_tokens=1)
        if reply.status == 200:
            answered.append((label, key, reply))
            checks.append(Check(f"200 with {label}", "pass", f"{model} answered."))
        elif reply.status == 429 and "retry-after" in reply.headers:
            spent.append((label, key, reply))
            detail = (
                f"429: this window's quota is already spent (an earlier run?); Retry-After "
                f"{reply.headers['retry-after']}s. The limit checks below count it."
            )
            checks.append(Check(f"200 with {label}", "skip", detail))
        else:
            checks.append(
                Check(f"200 with {label}", "fail", f"{reply.status} instead of 200: {reply.message()}")
            )
    if answered:
        checks.append(_headers_check(answered))
    checks += await _limit_checks(client, options, model, answered, spent)


async def _limit_checks(
    client: _Client,
    options: VerifyOptions,
    model: str,
    answered: list[tuple[str, str, _Reply]],
    spent: list[tuple[str, str, _Reply]],
) -> list[Check]:
    """The request and token limit checks; a key already refused counts as a limit reached."""
    checks = []
    for kind, name in (("requests", "request limit reached"), ("tokens", "token limit reached")):
        done = next((item for item in spent if item[2].limit_kind() == kind), None)
        if done is not None:
            checks.append(
                _refusal(name, done[2], f"at once with {done[0]}, whose quota an earlier run spent")
            )
    if len(checks) == 2 or not answered:
        return checks
    reached = {check.name for check in checks}
    if "request limit reached" not in reached:
        chosen = min(answered, key=lambda item: _limit(item[2], "requests"))
        checks.insert(0, await _request_limit_check(client, options, model, *chosen))
        answered = [item for item in answered if item is not chosen]
    if "token limit reached" not in reached:
        if not answered:
            detail = "Give a second key to check token limits: the first one has spent its requests."
            checks.append(Check("token limit reached", "skip", detail))
            return checks
        label, key, reply = min(answered, key=lambda item: _limit(item[2], "tokens"))
        checks.append(await _token_limit_check(client, options, model, label, key, reply))
    return checks


def _limit(reply: _Reply, kind: str) -> float:
    value = reply.header_int(f"x-ratelimit-remaining-{kind}")
    return float("inf") if value is None else value


async def _pick_model(client: _Client, keys: tuple[tuple[str, str], ...], checks: list[Check]) -> str | None:
    """The first listed model that is not an embedding model, asking with each key until one works."""
    reply: _Reply | None = None
    for _label, key in keys:
        reply = await client.call("GET", "/v1/models", key)
        data = reply.body.get("data") if isinstance(reply.body, dict) else None
        names = [str(entry.get("id")) for entry in data or [] if isinstance(entry, dict)]
        if reply.status == 200 and names:
            model = next((name for name in names if "embed" not in name), names[0])
            checks.append(Check("models listed", "pass", f"{', '.join(names)}; checking with {model}."))
            return model
    assert reply is not None  # there is always at least one key
    detail = f"{reply.status}, no models listed for any key: {reply.message()} Give --model to choose one."
    checks.append(Check("models listed", "fail", detail))
    return None


def _headers_check(answered: list[tuple[str, str, _Reply]]) -> Check:
    for label, _key, reply in answered:
        missing = [name for name in RATE_LIMIT_HEADERS if name not in reply.headers]
        if missing:
            detail = f"The answer to {label} lacks {', '.join(missing)}: limits seem to be off."
            return Check("rate-limit headers present", "fail", detail)
    return Check(
        "rate-limit headers present", "pass", f"All {len(RATE_LIMIT_HEADERS)} x-ratelimit-* headers."
    )


async def _request_limit_check(
    client: _Client, options: VerifyOptions, model: str, label: str, key: str, first: _Reply
) -> Check:
    name = "request limit reached"
    limit, remaining = (
        first.header_int("x-ratelimit-limit-requests"),
        first.header_int("x-ratelimit-remaining-requests"),
    )
    if remaining is not None and remaining >= options.max_requests:
        detail = (
            f"{label.capitalize()} has {remaining} requests left in its window, more than --max-requests "
            f"{options.max_requests}; raise --max-requests or give a key of a smaller tier."
        )
        return Check(name, "fail", detail)
    for sent in range(1, options.max_requests + 1):
        reply = await client.chat(key, model, max_tokens=1)
        if reply.status == 429:
            return _refusal(name, reply, f"at request {sent + 1} with {label} (limit {limit})")
        if reply.status != 200:
            return Check(name, "fail", f"Request {sent} with {label} got {reply.status}: {reply.message()}")
    detail = (
        f"No 429 after {options.max_requests} requests with {label}: request limits are not enforced "
        "(is limits.enabled false in the gateway's configuration?)."
    )
    return Check(name, "fail", detail)


async def _token_limit_check(
    client: _Client, options: VerifyOptions, model: str, label: str, key: str, first: _Reply
) -> Check:
    name = "token limit reached"
    limit, spent = first.header_int("x-ratelimit-limit-tokens"), 0
    for sent in range(1, options.max_requests + 1):
        reply = await client.chat(key, model, max_tokens=options.max_tokens, prompt=_LONG_PROMPT)
        if reply.status == 429:
            if reply.limit_kind() == "requests":
                detail = (
                    f"{label.capitalize()} reached its request limit after {spent} tokens, before its token "
                    "limit; give a key with more requests per window, or raise --max-tokens."
                )
                return Check(name, "fail", detail)
            return _refusal(
                name, reply, f"after {spent} tokens in {sent - 1} requests with {label} (limit {limit})"
            )
        if reply.status != 200:
            return Check(name, "fail", f"Request {sent} with {label} got {reply.status}: {reply.message()}")
        usage = reply.body.get("usage") if isinstance(reply.body, dict) else None
        spent += int(usage.get("total_tokens", 0)) if isinstance(usage, dict) else 0
    detail = (
        f"No 429 after {options.max_requests} requests ({spent} tokens) with {label}: token limits are not "
        "enforced (is limits.enabled false in the gateway's configuration?)."
    )
    return Check(name, "fail", detail)


def _refusal(name: str, reply: _Reply, when: str) -> Check:
    retry_after = reply.headers.get("retry-after")
    if retry_after is None:
        return Check(name, "fail", f"429 {when}, but without a Retry-After header.")
    kind = {"requests": " (request limit)", "tokens": " (token limit)"}.get(reply.limit_kind(), "")
    return Check(name, "pass", f"429{kind} {when}; Retry-After {retry_after}s.")


def run(options: VerifyOptions) -> list[Check]:
    """``run_checks`` for synchronous callers."""
    return asyncio.run(run_checks(options))
