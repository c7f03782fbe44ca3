"""Balancing policies over a heterogeneous fleet: latency and time to first token per policy.

Three `maas sim` processes serve one model, one of them three times slower per token, each with a real
waiting queue (`--max-num-seqs`). For each policy (round-robin, least-outstanding, queue-aware) a gateway
is started in front of all three and the same load is sent through it: concurrent streaming clients,
prompts of mixed lengths and mixed `max_tokens`, for a fixed time. It prints p50/p99 of the whole
request's latency and of the time to first token, and writes them as JSON.

    .venv/bin/python bench/balancing.py                  # about 2 minutes
    .venv/bin/python bench/balancing.py --duration 30s --clients 32
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from maas_gateway.config.durations import parse_duration
from services import BENCH_KEY, Service, free_port, gateway_config, maas_command

__all__ = ["main"]

POLICIES = ("round-robin", "least-outstanding", "queue-aware")
# Per-token latency and first-token latency of the fast backends; the slow one has three times both.
_ITL, _TTFT, _SEQS = 0.004, 0.02, 8


def _simulators(directory: Path) -> list[Service]:
    services = []
    for index, factor in enumerate((1, 1, 3)):
        port = free_port()
        args = maas_command(
            "sim",
            "--port",
            str(port),
            "--itl",
            str(_ITL * factor),
            "--ttft",
            str(_TTFT * factor),
            "--max-num-seqs",
            str(_SEQS),
            "--seed",
            str(index),
        )
        log = directory / f"sim-{index}.log"
        services.append(Service(f"sim-{index}", args, port, log, cpu=None, ready_path="/health"))
    return services


def _gateway(directory: Path, policy: str, backends: list[str]) -> Service:
    port = free_port()
    config = gateway_config(backends[0], port, limits=True, access_log=False)
    for model in config["models"]:
        model["backends"] = list(backends)
        model["balancing"] = policy
    path = directory / f"gateway-{policy}.yaml"
    path.write_text(yaml.safe_dump(config), "utf-8")
    args = maas_command("serve", "--config", str(path), "--log-level", "warning")
    return Service(
        f"gateway {policy}", args, port, directory / f"gateway-{policy}.log", cpu=None, ready_path="/ready"
    )


async def _load(url: str, clients: int, duration: float, seed: int) -> dict[str, Any]:
    """``clients`` streaming clients for ``duration`` seconds; latency and time to first token, in ms."""
    rng = random.Random(seed)  # noqa: S311  # prompt lengths for a benchmark, not security
    latencies: list[float] = []
    first_tokens: list[float] = []
    failures = 0
    deadline = time.monotonic() + duration
    headers = {"Authorization": f"Bearer {BENCH_KEY}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(http: httpx.AsyncClient, draw: random.Random) -> None:
        nonlocal failures
        while time.monotonic() < deadline:
            words = draw.choice((8, 64, 400))  # short, medium and long prompts
            body = {
                "model": "simulator-model",
                "stream": True,
                "max_tokens": draw.choice((16, 32, 64)),
                "messages": [{"role": "user", "content": " ".join(["word"] * words)}],
            }
            started = time.perf_counter()
            first = None
            try:
                async with http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as answer:
                    if answer.status_code != 200:
                        failures += 1
                        await answer.aread()
                        continue
                    async for line in answer.aiter_lines():
                        if first is None and line.startswith("data: "):
                            first = time.perf_counter()
            except httpx.HTTPError:
                failures += 1
                continue
            ended = time.perf_counter()
            latencies.append((ended - started) * 1000)
            first_tokens.append(((first or ended) - started) * 1000)

    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(http, random.Random(rng.random())) for _ in range(clients)))  # noqa: S311
    return {
        "requests": len(latencies),
        "failures": failures,
        "latency_p50_ms": _percentile(latencies, 50),
        "latency_p99_ms": _percentile(latencies, 99),
        "ttft_p50_ms": _percentile(first_tokens, 50),
        "ttft_p99_ms": _percentile(first_tokens, 99),
    }


def _percentile(values: list[float], percent: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", default="20s", help="measured time per policy")
    parser.add_argument("--warmup", default="3s", help="unmeasured load before each policy's run")
    parser.add_argument("--clients", type=int, default=24, help="concurrent streaming clients")
    parser.add_argument("--policies", default=",".join(POLICIES))
    parser.add_argument("--output", type=Path, default=Path("bench/results/balancing.json"))
    options = parser.parse_args()
    duration, warmup = parse_duration(options.duration), parse_duration(options.warmup)
    results: dict[str, Any] = {"clients": options.clients, "duration_s": duration, "policies": {}}
    with tempfile.TemporaryDirectory(prefix="maas-balancing-") as temporary, contextlib.ExitStack() as stack:
        directory = Path(temporary)
        simulators = [stack.enter_context(service) for service in _simulators(directory)]
        backends = [service.url for service in simulators]
        print(f"backends: {backends[0]}, {backends[1]} (fast), {backends[2]} (3x slower)")
        for policy in options.policies.split(","):
            with _gateway(directory, policy, backends) as gateway:
                asyncio.run(_load(gateway.url, options.clients, warmup, seed=1))
                figures = asyncio.run(_load(gateway.url, options.clients, duration, seed=2))
            results["policies"][policy] = figures
            print(
                f"  {policy:18} {figures['requests']:6d} requests, {figures['failures']} failed"
                f"   latency p50 {figures['latency_p50_ms']:7.1f} ms  p99 {figures['latency_p99_ms']:7.1f} ms"
                f"   first token p50 {figures['ttft_p50_ms']:7.1f} ms  p99 {figures['ttft_p99_ms']:7.1f} ms"
            )
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(results, indent=2) + "\n", "utf-8")


if __name__ == "__main__":
    main()
