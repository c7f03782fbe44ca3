"""How Redis memory grows with active users: bytes per user for the demo tiers' limit counters.

Starts a private redis-server on a free port, admits and charges one request for each of N users through
the gateway's own Limiter and Lua scripts, and reads `used_memory` before and after.

    .venv/bin/python bench/redis_memory.py --users 10000
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import tempfile
import time

import redis

from maas_gateway.application.policies import rule_book
from maas_gateway.config import demo_config
from maas_gateway.limits import Limiter, TokenCharge
from maas_gateway.limits.redis_storage import RedisLimitStorage

__all__ = ["main"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _fill(url: str, users: int) -> None:
    config = demo_config()
    storage = RedisLimitStorage(url, timeout=5)
    limiter = Limiter(storage, rule_book(config.tiers, {}))
    for index in range(users):
        admission = await limiter.admit(f"user-{index:07d}", "premium", "simulator-model")
        await limiter.settle(admission, TokenCharge(10, 20))
    await storage.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed.")
    port = _free_port()
    with tempfile.TemporaryDirectory() as directory:
        server = subprocess.Popen(
            [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", directory],
            stdout=subprocess.DEVNULL,
        )
        try:
            client = redis.Redis(port=port)
            for _ in range(100):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            before = int(client.info("memory")["used_memory"])
            asyncio.run(_fill(f"redis://127.0.0.1:{port}/0", args.users))
            after = int(client.info("memory")["used_memory"])
            keys = int(client.dbsize())
            client.close()
        finally:
            server.terminate()
            server.wait(10)
    grown = after - before
    print(f"{args.users} users, {keys} counters: {grown / 1024 / 1024:.1f} MiB")
    print(f"{grown / args.users:.0f} bytes per active user, {grown / keys:.0f} bytes per counter")


if __name__ == "__main__":
    main()
