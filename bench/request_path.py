"""The gateway's own CPU per request, in process: the whole ASGI app without sockets on either side.

``bench/run.py`` measures the gateway behind wrk, which on a shared two-core machine is noisy. This drives
the real ``Application`` (built from the benchmark's gateway configuration) with ASGI messages and an
``InMemoryTransport`` that answers like the fast backend, so what is timed is the request path alone:
authentication, parsing, routing, limits, pricing, the answer, the access log, metrics and the usage
record. Not timed: the HTTP parsing of the edge protocol and the upstream client's sockets (their costs
are in bench/README.md). Figures are the process's CPU time, best of ``--repeat`` rounds.

Two extra variants exercise what the benchmark's demo configuration does not: ``limits-scoped`` gives the
model a price, the key a team, and adds team, tier and cost limits (so ``RuleBook.applicable``, the price
lookup and the money charge run per request); ``limits-off`` and ``limits-on`` are run.py's.

    .venv/bin/python bench/request_path.py --requests 20000 --repeat 5
    # instruction counts, repeatable whatever else runs: the difference of two lengths, per request
    valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python bench/request_path.py \
        --requests 500 --repeat 1 --variants limits-on

The script imports ``maas_gateway`` from wherever ``PYTHONPATH`` points, so older code can be measured by
extracting its ``src`` (``git archive <commit> src | tar -x -C /tmp/old``) and pointing there.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import uvloop

from maas_gateway.application.root import Application
from maas_gateway.config.loader import parse_config
from maas_gateway.upstream import InMemoryTransport, MemoryAnswer, UpstreamRequest
from services import BENCH_KEY, gateway_config

__all__ = ["main"]

VARIANTS = ("limits-off", "limits-on", "limits-scoped")
_HUGE = 10**12
_BODY = orjson.dumps(
    {
        "model": "simulator-model",
        "messages": [{"role": "user", "content": "Write one sentence about gateways."}],
    }
)
_ANSWER = orjson.dumps(
    {
        "id": "chatcmpl-fastbackend",
        "created": 1_700_000_000,
        "model": "simulator-model",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "word " * 19 + "word"},
                "logprobs": None,
                "finish_reason": "length",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
    }
)


def _config(variant: str) -> dict[str, Any]:
    data = gateway_config("http://127.0.0.1:9", 8000, limits=variant != "limits-off", access_log=True)
    if variant == "limits-scoped":
        data = copy.deepcopy(data)
        for model in data["models"]:
            if model["name"] == "simulator-model":
                model["prices"] = [
                    {"effective_from": "2026-01-01", "input_per_million": 0.5, "output_per_million": 1.5},
                    {"effective_from": "2026-06-01", "input_per_million": 0.4, "output_per_million": 1.2},
                ]
        data["tiers"]["bench"]["limits"] += [
            {"limit": _HUGE, "unit": "cost", "window": "1d"},
            {"limit": _HUGE, "unit": "requests", "window": "1m", "scope": "tier"},
            {"limit": _HUGE, "unit": "tokens", "window": "1h", "model": "simulator-model", "scope": "global"},
        ]
        data["teams"] = {"bench-team": {"limits": [{"limit": _HUGE, "unit": "tokens", "window": "1d"}]}}
        for key in data["api_keys"]:
            if key["user"] == "benchuser":
                key["team"] = "bench-team"
    return data


async def _answer(request: UpstreamRequest) -> MemoryAnswer:
    return MemoryAnswer(200, [("content-type", "application/json")], _ANSWER)


def _scope() -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {BENCH_KEY}".encode()),
            (b"content-length", str(len(_BODY)).encode()),
        ],
    }


async def _lifespan(app: Any, kind: str) -> None:
    if kind != "startup":
        await app.lifecycle.stop()
        return
    started = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if started.is_set():
            await asyncio.Event().wait()  # no shutdown message: the task is cancelled instead
        return {"type": "lifespan.startup"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"The gateway did not start: {message}.")
        started.set()

    # The lifespan runs until shutdown; it is cancelled once the startup is complete (stop() ends it).
    task = asyncio.get_running_loop().create_task(app({"type": "lifespan"}, receive, send))
    await started.wait()
    task.cancel()


async def _round(app: Any, requests: int) -> float:
    """CPU seconds for ``requests`` sequential chat requests, each checked to be a 200."""
    scope_template = _scope()
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": _BODY, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    started = time.process_time()
    for _ in range(requests):
        await app(dict(scope_template), receive, send)
    elapsed = time.process_time() - started
    if any(status != 200 for status in statuses):
        raise RuntimeError(f"Not every request was answered 200: {sorted(set(statuses))}.")
    return elapsed


async def _measure(
    variant: str, requests: int, repeat: int, warmup: int, report: Callable[[str], None]
) -> float:
    application = Application(parse_config(_config(variant)), transport=InMemoryTransport(_answer))
    app = application.asgi
    await _lifespan(app, "startup")
    try:
        await _round(app, warmup)  # caches, the allocator, the key lookup
        best = min([await _round(app, requests) for _ in range(repeat)], default=0.0)
    finally:
        await _lifespan(app, "shutdown")
    per_request = best / requests * 1e6 if requests else 0.0
    report(f"{variant:14} {per_request:8.2f} µs/req  (best of {repeat} x {requests:,})")
    return per_request


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2000, help="requests before the measured rounds")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions under valgrind instead: (requests + warmup) minus warmup alone, per request",
    )
    args = parser.parse_args()
    variants = [name for name in args.variants.split(",") if name]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"Unknown variants {unknown}; choose from {', '.join(VARIANTS)}.")
    if args.instructions:
        for variant in variants:
            whole = _instructions(variant, args.requests, args.warmup)
            base = _instructions(variant, 0, args.warmup)
            per_request = (whole - base) / args.requests
            print(f"{variant:14} {per_request:10,.0f} instructions/req  ({args.requests:,} requests)")
        return
    out = sys.stdout
    # The access log writes to standard error: keep it off the terminal (it is still written).
    sys.stderr.flush()
    if not os.environ.get("BENCH_STDERR"):
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    for variant in variants:
        uvloop.run(
            _measure(
                variant,
                args.requests,
                args.repeat,
                args.warmup,
                lambda line: print(line, file=out, flush=True),
            )
        )


def _instructions(variant: str, requests: int, warmup: int) -> int:
    """Instructions the whole process ran for ``warmup`` plus ``requests`` requests (callgrind's total)."""
    with tempfile.TemporaryDirectory(prefix="maas-request-path-") as directory:
        out = Path(directory) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--requests",
            str(requests),
            "--repeat",
            "1" if requests else "0",
            "--warmup",
            str(warmup),
            "--variants",
            variant,
        ]
        # One hash seed: string hashes decide dict layouts, which would otherwise vary the count per run.
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        subprocess.run(command, check=True, capture_output=True, env=env)
        for line in out.read_text().splitlines():
            if line.startswith("totals:") or line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError("callgrind wrote no totals.")


if __name__ == "__main__":
    main()
