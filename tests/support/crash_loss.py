"""A gateway stopped or killed during a PostgreSQL outage, and what the ledger lost: measured, not assumed.

One run: a gateway on a fresh database of a private PostgreSQL serves chat load from client threads; the
server is stopped (or SIGKILLed) and, ``kill_after`` seconds into the outage, the gateway gets ``sig``.
The server comes back, a new gateway starts on the same spool (its start replays it), and the request ids
the clients saw answered are compared with the ids stored. Used by a test (a few runs, a generous bound)
and by ``bench/ledger_crash_loss.py`` (20 runs, the figures in docs/operations.md).
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from tests.support.configs import demo_dict
from tests.support.load import Load
from tests.support.postgres_server import PrivatePostgres, create_database
from tests.support.processes import GatewayProcess, free_port, maas

__all__ = ["CrashRun", "crash_during_outage", "stored_ids"]


@dataclass(frozen=True)
class CrashRun:
    signal: str
    outage: str  # "stopped" (pg_ctl stop -m fast) or "killed" (SIGKILL)
    kill_after: float  # seconds into the outage
    answered: int  # requests the clients saw answered in the whole run
    answered_in_outage: int
    lost: int  # answered but not in the ledger after the restart
    spooled: bool  # the spool held records when the gateway died

    @property
    def rate(self) -> float:
        """Answers per second during the outage."""
        return self.answered_in_outage / self.kill_after if self.kill_after else 0.0


def stored_ids(dsn: str) -> set[str]:
    async def fetch() -> set[str]:
        connection = await asyncpg.connect(dsn, timeout=5)
        try:
            return {row[0] for row in await connection.fetch("SELECT request_id FROM usage_records")}
        finally:
            await connection.close()

    return asyncio.run(fetch())


def _gateway(config: dict[str, Any], work: Path, name: str) -> GatewayProcess:
    port, metrics_port = free_port(), free_port()
    config = {
        **config,
        "server": {**config.get("server", {}), "port": port},
        "metrics": {"listen": f"127.0.0.1:{metrics_port}"},
    }
    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config), "utf-8")
    return GatewayProcess(maas("serve", "--config", str(path)), port, metrics_port, work / f"{name}.log")


def crash_during_outage(
    simulator_url: str,
    postgres: PrivatePostgres,
    work: Path,
    *,
    kill_after: float,
    sig: signal.Signals = signal.SIGKILL,
    kill_database: bool = False,
    database: dict[str, Any] | None = None,
    threads: int = 4,
    warmup: float = 0.5,
) -> CrashRun:
    """One run; ``database`` adds settings (flush_interval, spool_commit_interval) to the gateway's."""
    work.mkdir(parents=True, exist_ok=True)
    url = create_database(postgres.dsn)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    config = demo_dict(simulator_url, limits=False)
    config["database"] = {"url": url, "spool_dir": str(work / "spool"), **(database or {})}
    config["keys"] = {"change_poll_interval": "60s"}  # fewer database errors in the log during the outage
    first = _gateway(config, work, "first").start()
    try:
        with Load(first.url, threads) as load:
            time.sleep(warmup)
            if kill_database:
                postgres.kill()
            else:
                postgres.stop()
            down_at = len(load.answered)
            time.sleep(kill_after)
            spooled = any(path.stat().st_size for path in (work / "spool").glob("usage-spool*"))
            first.stop(sig)
        answered = set(load.answered)
    finally:
        first.stop(signal.SIGKILL)
    postgres.start()
    second = _gateway(config, work, "second").start()  # its start replays the spool
    try:
        # Its start replayed the spool before it answered /health; wait for an empty spool all the same.
        deadline = time.monotonic() + 15
        while any(path.stat().st_size for path in (work / "spool").glob("usage-spool*")):
            if time.monotonic() > deadline:
                raise RuntimeError(f"The spool was not replayed within 15 s:\n{second.log()}")
            time.sleep(0.1)
        stored = stored_ids(dsn)
    finally:
        second.stop()
    return CrashRun(
        signal=sig.name,
        outage="killed" if kill_database else "stopped",
        kill_after=kill_after,
        answered=len(answered),
        answered_in_outage=len(answered) - down_at,
        lost=len(answered - stored),
        spooled=spooled,
    )
