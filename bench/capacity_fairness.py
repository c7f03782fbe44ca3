"""A fleet saturated by free users while one enterprise user sends at a steady rate (issue 14).

The simulator (``maas sim --ttft --itl``: each answer takes about ``ttft + 19 * itl`` seconds) sits behind
one gateway (or ``--replicas`` gateways sharing ``--redis``) whose model is capped at ``--cap`` requests in
flight, with the tier order enterprise, premium, free, and the free tier's requests allowed to hold
``--free-share`` of the slots together. Two phases of ``--duration`` each:

1. unloaded: the enterprise user alone, one request every ``1 / --enterprise-rate`` seconds (open loop);
2. loaded: the same, while ``--free-workers`` loops over ``--free-users`` free users send request after
   request, pausing after a 429 or 503 for its Retry-After (at most ``--max-backoff``), as a client would;
   they run in a process of their own, so that their client's work does not delay the enterprise user's.

It prints the enterprise user's latency in both phases (the target: loaded p99 within 1.5 times the
unloaded p99), and for the free users what they got: answers, refusals by code, and the fewest answers
any free user got (none starved: every one got some). Run (Redis only for ``--replicas`` above 1):

    .venv/bin/python bench/capacity_fairness.py --duration 20s
    .venv/bin/python bench/capacity_fairness.py --replicas 2 --redis redis://127.0.0.1:6379/15
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml

from services import Service, free_port, gateway_config, maas_command

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
ENTERPRISE_KEY = "enterpriseuser1_key"
TARGET = 1.5  # the loaded p99 of the enterprise user over its unloaded p99


@dataclass
class Outcomes:
    """What one phase saw: the enterprise user's latencies, the free users' answers and refusals."""

    enterprise: list[float] = field(default_factory=list)
    enterprise_errors: Counter[str] = field(default_factory=Counter)
    free_served: Counter[str] = field(default_factory=Counter)
    free_refused: Counter[str] = field(default_factory=Counter)


def _seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0}
    for unit in ("ms", "s", "m"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    return float(text)


def _token_range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    return int(low), int(high or low)


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _send(
    client: httpx.AsyncClient, url: str, key: str, max_tokens: int | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"model": "simulator-model", "messages": [{"role": "user", "content": "Hello"}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return await client.post(
        url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    )


async def _enterprise(
    client: httpx.AsyncClient, urls: list[str], rate: float, until: float, out: Outcomes
) -> None:
    """Open loop: a request every 1 / rate seconds, whatever the answers take."""
    tasks = []

    async def one(url: str) -> None:
        started = time.perf_counter()
        response = await _send(client, url, ENTERPRISE_KEY)
        if response.status_code == 200:
            out.enterprise.append(time.perf_counter() - started)
        else:
            out.enterprise_errors[str(response.status_code)] += 1

    number = 0
    next_at = time.monotonic()
    while next_at < until:
        tasks.append(asyncio.create_task(one(urls[number % len(urls)])))
        number += 1
        next_at += 1 / rate
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await asyncio.gather(*tasks)


async def _free_worker(
    client: httpx.AsyncClient, url: str, user: str, until: float, args: argparse.Namespace, out: Outcomes
) -> None:
    max_backoff, tokens_range = args.max_backoff, args.free_tokens
    while time.monotonic() < until:
        tokens = random.randint(*tokens_range) if tokens_range else None  # noqa: S311  # a load shape, not a secret
        response = await _send(client, url, f"{user}_key", tokens)
        if response.status_code == 200:
            out.free_served[user] += 1
            continue
        code = response.json().get("error", {}).get("code", str(response.status_code))
        out.free_refused[f"{response.status_code} {code}"] += 1
        await asyncio.sleep(min(max_backoff, float(response.headers.get("retry-after", "1"))))


def _limits(connections: int) -> httpx.Limits:
    return httpx.Limits(max_connections=connections, max_keepalive_connections=connections)


async def _free_flood(args: argparse.Namespace, urls: list[str], until: float) -> Outcomes:
    out = Outcomes()
    async with httpx.AsyncClient(timeout=120, limits=_limits(args.free_workers)) as client:
        await asyncio.gather(
            *(
                _free_worker(client, urls[n % len(urls)], f"free{n % args.free_users}", until, args, out)
                for n in range(args.free_workers)
            )
        )
    return out


def _flood_process(args: argparse.Namespace, urls: list[str], until: float, results: Any) -> None:
    """The free users' load, in a process of its own: its client's CPU must not delay the enterprise
    user's requests, whose latency is what is measured."""
    out = asyncio.run(_free_flood(args, urls, until))
    results.put((dict(out.free_served), dict(out.free_refused)))


async def _steady(args: argparse.Namespace, urls: list[str], until: float) -> Outcomes:
    out = Outcomes()
    async with httpx.AsyncClient(timeout=120, limits=_limits(64)) as client:
        await _enterprise(client, urls, args.enterprise_rate, until, out)
    return out


def _phase(args: argparse.Namespace, urls: list[str], loaded: bool) -> Outcomes:
    until = time.monotonic() + args.duration  # CLOCK_MONOTONIC: the same in every process
    if not loaded:
        return asyncio.run(_steady(args, urls, until))
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    flood = context.Process(target=_flood_process, args=(args, urls, until, results))
    flood.start()
    try:
        out = asyncio.run(_steady(args, urls, until))
        served, refused = results.get(timeout=args.duration + 150)
    finally:
        flood.join(10)
    out.free_served.update(served)
    out.free_refused.update(refused)
    return out


def _config(args: argparse.Namespace, backend: str, port: int) -> dict[str, Any]:
    config = gateway_config(backend, port, limits=False, access_log=args.access_log)
    config["models"][0]["capacity"] = {"max_in_flight": args.cap}
    if args.free_share < 1:
        config["tiers"]["free"]["capacity_share"] = args.free_share
    config["capacity"] = {
        "tier_order": ["enterprise", "premium", "free"],
        "max_queue": args.max_queue,
        "queue_timeout": args.queue_timeout,
        "poll_interval": args.poll_interval,
    }
    config["limits"]["storage"] = args.redis or "memory"
    for number in range(args.free_users):
        config["api_keys"].append({"user": f"free{number}", "tier": "free", "key": f"free{number}_key"})
    return config


def _waits(metrics_urls: list[str]) -> dict[str, dict[str, float]]:
    """From the gateways' metrics: per tier and outcome, how many waited in line and for how long."""
    totals: dict[str, dict[str, float]] = {}
    for url in metrics_urls:
        for line in httpx.get(url + "/metrics", timeout=10).text.splitlines():
            if not line.startswith("maas_capacity_wait_seconds_"):
                continue
            name, value = line.rsplit(" ", 1)
            kind = name.split("{")[0].removeprefix("maas_capacity_wait_seconds_")
            if kind not in ("sum", "count"):
                continue
            labels = dict(part.split("=") for part in name.split("{")[1].rstrip("}").split(","))
            key = f"{labels['tier'].strip(chr(34))} {labels['outcome'].strip(chr(34))}"
            entry = totals.setdefault(key, {"count": 0.0, "sum": 0.0})
            entry[kind] += float(value)
    return {
        key: {"waited": entry["count"], "mean_wait_ms": round(entry["sum"] / entry["count"] * 1000, 1)}
        for key, entry in totals.items()
        if entry["count"]
    }


def _summary(label: str, out: Outcomes) -> dict[str, Any]:
    latencies = out.enterprise
    summary: dict[str, Any] = {
        "phase": label,
        "enterprise_answers": len(latencies),
        "enterprise_errors": dict(out.enterprise_errors),
        "enterprise_p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "enterprise_p99_ms": round(_percentile(latencies, 0.99) * 1000, 1) if latencies else None,
        "enterprise_slowest_ms": [round(value * 1000) for value in sorted(latencies)[-5:]],
    }
    if out.free_served or out.free_refused:
        served = out.free_served
        summary.update(
            free_answers=sum(served.values()),
            free_refused=dict(out.free_refused),
            free_fewest_answers_of_a_user=min(served.values()) if served else 0,
            free_users_served=len(served),
        )
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--duration", type=_seconds, default=20.0, help="length of each phase (20s)")
    add("--cap", type=int, default=8, help="the model's max_in_flight (8)")
    add("--max-queue", type=int, default=64, help="capacity.max_queue (64)")
    add("--queue-timeout", default="5s", help="capacity.queue_timeout (5s)")
    add("--poll-interval", default="50ms", help="capacity.poll_interval (50ms)")
    add("--free-users", type=int, default=16, help="free users (16)")
    add("--free-workers", type=int, default=128, help="concurrent free request loops (128)")
    add("--free-share", type=float, default=0.75, help="the free tier's capacity_share; 1: none (0.75)")
    add(
        "--max-backoff",
        type=_seconds,
        default=1.0,
        help="longest pause a free loop makes after a refusal (1s)",
    )
    add(
        "--free-tokens",
        type=_token_range,
        help="answer lengths of the free users' requests, drawn per request (e.g. 5-40); default: the "
        "simulator's 20, so that their answers all take as long and end in step",
    )
    add("--enterprise-rate", type=float, default=4.0, help="enterprise requests per second (4)")
    add("--ttft", type=float, default=0.05, help="the simulator's time to first token (0.05)")
    add("--itl", type=float, default=0.02, help="the simulator's time between tokens (0.02)")
    add("--replicas", type=int, default=1, help="gateways (more than one needs --redis)")
    add("--redis", help="a redis:// URL shared by the gateways (its capacity keys are deleted first)")
    add("--no-pin", action="store_true", help="do not pin the gateway to CPU 0 and the simulator to CPU 1")
    add("--output", type=Path, default=HERE / "results" / "capacity-latest.json")
    add("--log-dir", type=Path, help="keep the configurations and server logs in this directory")
    add("--access-log", action="store_true", help="the gateways write an access log line per request")
    args = parser.parse_args(argv)
    if args.replicas > 1 and not args.redis:
        parser.error("--replicas above 1 needs --redis: the cap is shared through it")
    if args.redis:  # leases and waiting requests an interrupted run left behind
        client = redis.Redis.from_url(args.redis)
        for key in client.scan_iter("maas:capacity:*"):
            client.delete(key)
        client.close()
    with tempfile.TemporaryDirectory(prefix="maas-capacity-") as temp, ExitStack() as stack:
        work = (args.log_dir or Path(temp)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        sim_port = free_port()
        sim_args = maas_command(
            "sim", "--port", str(sim_port), "--ttft", str(args.ttft), "--itl", str(args.itl)
        )
        sim = stack.enter_context(
            Service(
                "sim",
                sim_args,
                sim_port,
                work / "sim.log",
                cpu=None if args.no_pin else 1,
                ready_path="/health",
            )
        )
        urls, metrics_urls = [], []
        for number in range(args.replicas):
            port = free_port()
            path = work / f"gateway-{number}.yaml"
            config = _config(args, sim.url, port)
            metrics_urls.append("http://" + config["metrics"]["listen"])
            path.write_text(yaml.safe_dump(config), "utf-8")
            command = maas_command("serve", "--config", str(path), "--log-level", "warning")
            cpu = None if args.no_pin else number % 2
            gateway = Service(
                f"gateway {number}",
                command,
                port,
                work / f"gateway-{number}.log",
                cpu=cpu,
                ready_path="/ready",
            )
            urls.append(stack.enter_context(gateway).url)
        answer_ms = (args.ttft + 19 * args.itl) * 1000
        print(f"cap {args.cap}, answers of about {answer_ms:.0f} ms, {len(urls)} gateway(s)")
        results = []
        for label, loaded in (("unloaded", False), ("loaded", True)):
            summary = _summary(label, _phase(args, urls, loaded))
            summary["waits_so_far"] = _waits(metrics_urls)  # cumulative over the phases
            print(json.dumps(summary))
            results.append(summary)
    alone, busy = results
    ratio = None
    if alone["enterprise_p99_ms"] and busy["enterprise_p99_ms"]:
        ratio = busy["enterprise_p99_ms"] / alone["enterprise_p99_ms"]
        verdict = "ok" if ratio <= TARGET else "MISS"
        print(f"enterprise p99 loaded / unloaded: {ratio:.2f} (target at most {TARGET}): {verdict}")
    starved = args.free_users - busy.get("free_users_served", 0)
    print(f"free users with no answer at all: {starved} of {args.free_users}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    args.output.write_text(
        json.dumps({"settings": settings, "phases": results, "p99_ratio": ratio}, indent=2)
    )
    return 0 if ratio is not None and ratio <= TARGET and starved == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
