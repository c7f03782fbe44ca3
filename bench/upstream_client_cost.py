"""The upstream client's own CPU per request, against the simulator, for whole and streamed answers.

The gateway runs the upstream client twice per request (send, receive), so its cost is part of every
figure in bench/README.md; this isolates it. The benchmark starts ``maas sim`` (zero latency) as a
separate process and sends it requests from this one through ``HttptoolsTransport`` on uvloop,
``--concurrency`` at a time. The figure is this process's CPU time (user and system, not wall time, so
other work on a shared machine counts little) divided by the requests sent; the best of ``--repeats``
runs is reported.

    .venv/bin/python bench/upstream_client_cost.py --requests 4000 --repeats 5

To compare two versions of the client, run it once per version with ``PYTHONPATH`` pointing at each
version's ``src`` directory, alternating, and compare the best figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.request

import uvloop

from maas_gateway.upstream import HttptoolsTransport, UpstreamRequest, UpstreamTransport

__all__ = ["main"]

_CHAT = b'{"model":"simulator-model","messages":[{"role":"user","content":"Hi"}]}'
_STREAM = b'{"model":"simulator-model","messages":[{"role":"user","content":"Hi"}],"stream":true}'
_HEADERS = [("content-type", "application/json"), ("x-maas-user", "bench"), ("x-request-id", "0" * 32)]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_simulator(port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "maas_gateway", "sim", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=0.5):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("The simulator did not start within 30 seconds.")


async def _run(transport: UpstreamTransport, request: UpstreamRequest, count: int, concurrency: int) -> None:
    stream = b'"stream":true' in request.body
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            response = await transport.send(request)
            try:
                if stream:
                    async for _ in response.iter_chunks():
                        pass
                else:
                    await response.read()
            finally:
                response.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _measure(url: str, requests: int, repeats: int, concurrency: int) -> dict[str, float]:
    transport = HttptoolsTransport(connect_timeout=5, read_timeout=30, max_connections=concurrency)
    results: dict[str, float] = {}
    try:
        for name, body in (("chat", _CHAT), ("stream", _STREAM)):
            request = UpstreamRequest("POST", url + "/v1/chat/completions", _HEADERS, body)
            await _run(transport, request, concurrency * 20, concurrency)  # warm the pool and the caches
            best = float("inf")
            for _ in range(repeats):
                started = time.process_time()
                await _run(transport, request, requests, concurrency)
                best = min(best, (time.process_time() - started) / requests * 1e6)
            results[name] = round(best, 1)
    finally:
        await transport.aclose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="requests per run")
    parser.add_argument("--repeats", type=int, default=5, help="runs per scenario; the best is kept")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight at once")
    options = parser.parse_args()
    port = _free_port()
    simulator = _start_simulator(port)
    try:
        results = uvloop.run(
            _measure(f"http://127.0.0.1:{port}", options.requests, options.repeats, options.concurrency)
        )
    finally:
        simulator.terminate()
        simulator.wait(10)
    print(json.dumps({"client_cpu_us_per_request": results}))


if __name__ == "__main__":
    main()
