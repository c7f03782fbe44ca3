"""PostgreSQL for tests: a throwaway database on the machine's server, or a private server to stop.

Tests that only need a database use the machine's PostgreSQL (127.0.0.1:5432, trust). Tests that stop and
restart the database start a private server with initdb/pg_ctl on a free port, as the `postgres` user
when run as root (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tests.support.processes import free_port

__all__ = ["PrivatePostgres", "create_database", "drop_database", "throwaway_database", "unavailable"]

SERVER_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def unavailable(message: str) -> None:
    """A missing service fails under CI and is skipped elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def create_database(dsn: str = SERVER_DSN) -> str:
    """Create an empty database; return its SQLAlchemy async URL."""
    name = f"maas_test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        connection = await asyncpg.connect(dsn, timeout=5)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    try:
        asyncio.run(create())
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable(f"PostgreSQL is not reachable at {dsn} ({exc}).")
    base = dsn.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


@contextlib.contextmanager
def throwaway_database(kind: str, directory: Path) -> Iterator[str]:
    """An empty database's SQLAlchemy URL: a SQLite file in ``directory``, or a PostgreSQL database that
    is dropped afterwards (``kind`` is ``sqlite`` or ``postgresql``)."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'maas.db'}"
        return
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)


def drop_database(url: str, dsn: str = SERVER_DSN) -> None:
    name = url.rsplit("/", 1)[1]

    async def drop() -> None:
        connection = await asyncpg.connect(dsn, timeout=5)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    asyncio.run(drop())


class PrivatePostgres:
    """A PostgreSQL server of our own, so a test can stop and restart it."""

    def __init__(self) -> None:
        binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        if not binaries:
            unavailable("PostgreSQL server binaries (pg_ctl, initdb) are not installed.")
        self.bin = Path(binaries[-1]).parent
        self.port = free_port()
        # Under /tmp with open permissions: the postgres user must reach it, unlike pytest's tmp_path.
        self.root = Path(tempfile.mkdtemp(prefix="maas-pg-", dir="/tmp"))
        self.data = self.root / "data"
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def init(self) -> PrivatePostgres:
        os.chmod(self.root, 0o755)  # noqa: S103  # the postgres user must enter it; it holds no secret
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def kill(self) -> None:
        """SIGKILL the server and its backends, as a crashed node would leave it: no shutdown, no
        goodbye to clients. The next ``start`` runs crash recovery."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        backends = [
            int(entry.name)
            for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and _stat(entry)[1:] == (postmaster,)
        ]
        for pid in (postmaster, *backends):  # the postmaster first, so it restarts nothing
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        # A zombie (state Z) is dead, whether or not anyone reaps it.
        while any(_stat(Path(f"/proc/{pid}"))[0] not in (None, "Z") for pid in (postmaster, *backends)):
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL processes outlived SIGKILL by 10 s.")
            time.sleep(0.02)
        # An unreaped zombie still answers kill(pid, 0), which the next postmaster takes for a live one.
        # Its lock files (the data directory's and the socket's) are left as a crash leaves them.
        for lock in (self.data / "postmaster.pid", *self.root.glob(".s.PGSQL.*")):
            lock.unlink(missing_ok=True)

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def _stat(process: Path) -> tuple[str | None, int | None]:
    """A process's state letter and parent pid; (None, None) once it is gone."""
    try:
        fields = (process / "stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError):
        return None, None
    return fields[0], int(fields[1])
