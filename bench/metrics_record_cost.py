"""The hot-path cost of counting one request in Prometheus metrics, in-process and multiprocess.

``GatewayMetrics.record`` runs once per answered request. In one process its counters are floats behind
a lock; with ``maas serve --workers N`` they live in memory-mapped files (prometheus_client's
multiprocess mode) so one scrape sees the whole pod. This times ``record`` for a streamed chat request
(admitted, with tokens and a time to first token) over 100 callers, both ways, each in a fresh
interpreter because prometheus_client picks its value class when it is imported. Times are the process's
CPU time (best of several runs), so other work on a shared machine does not count.

    .venv/bin/python bench/metrics_record_cost.py --calls 200000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

__all__ = ["main"]

_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _measure(calls: int, repeats: int) -> float:
    """The best of ``repeats`` runs, in microseconds per ``record`` call."""
    from maas_gateway.metrics import GatewayMetrics

    metrics = GatewayMetrics()
    callers = [(f"user-{i}", "premium", "simulator-model") for i in range(100)]
    best = float("inf")
    for _ in range(repeats):
        started = time.process_time()
        for index in range(calls):
            user, tier, model = callers[index % 100]
            metrics.record(
                user=user,
                tier=tier,
                model=model,
                endpoint="/v1/chat/completions",
                status=200,
                admitted=True,
                rate_limited=False,
                tokens=(12, 30, 42),
                latency=0.042,
                time_to_first_token=0.004,
                backend_error=None,
            )
        best = min(best, (time.process_time() - started) / calls * 1e6)
    return best


def _in_child(calls: int, repeats: int, multiprocess_dir: str | None) -> float:
    env = {key: value for key, value in os.environ.items() if key != _MULTIPROC_ENV}
    if multiprocess_dir is not None:
        env[_MULTIPROC_ENV] = multiprocess_dir
    command = [sys.executable, __file__, "--calls", str(calls), "--repeats", str(repeats), "--child"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return float(result.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(f"{_measure(args.calls, args.repeats):.3f}")
        return
    single = _in_child(args.calls, args.repeats, None)
    with tempfile.TemporaryDirectory(prefix="maas-metrics-bench-") as directory:
        shared = _in_child(args.calls, args.repeats, directory)
    print(f"record() per request, best of {args.repeats} x {args.calls:,} calls:")
    print(f"  one process (in-memory values):        {single:.2f} µs")
    print(f"  --workers (multiprocess, mmap values):  {shared:.2f} µs")


if __name__ == "__main__":
    main()
