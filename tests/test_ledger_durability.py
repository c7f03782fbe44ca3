"""No usage record is lost: not on SIGTERM mid-load, not while PostgreSQL is down, not across a restart."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from maas_gateway.database import Database
from maas_gateway.metering import LedgerWriter, Spool, UsageQuery, UsageRecord
from maas_gateway.metering.sql_store import SqlLedgerStore
from tests.support.crash_loss import crash_during_outage, stored_ids
from tests.support.gateways import GatewayFactory
from tests.support.ledger import ledger_config
from tests.support.load import Load
from tests.support.postgres_server import PrivatePostgres, create_database
from tests.support.processes import ServerProcess


def _unlimited(config: dict[str, object]) -> dict[str, object]:
    config["limits"] = {"enabled": False}
    return config


def test_sigterm_mid_load_loses_nothing(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """SIGTERM during load (once 50 requests were answered): every request a client got an answer for is
    in the SQLite ledger afterwards, though the flush interval (5 s) had not come round."""
    database = tmp_path / "ledger.db"
    config = ledger_config(
        simulator.url,
        f"sqlite+aiosqlite:///{database}",
        tmp_path / "spool",
        flush_interval="5s",
        batch_size=10_000,
    )
    gateway = gateway_factory(_unlimited(config))
    with Load(gateway.url) as load:
        load.wait_for_answers(50, "answers before the SIGTERM")
        assert gateway.stop(signal.SIGTERM) == 0
    with sqlite3.connect(database) as connection:
        stored = {row[0] for row in connection.execute("SELECT request_id FROM usage_records")}
    assert load.answered <= stored
    assert "Traceback" not in gateway.log()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres().init()
    server.start()
    yield server
    server.remove()


def test_postgres_down_and_back_mid_load_loses_nothing(
    simulator: ServerProcess,
    gateway_factory: GatewayFactory,
    private_postgres: PrivatePostgres,
    tmp_path: Path,
) -> None:
    """PostgreSQL stopped mid-load: answers keep flowing (more than the 100 records memory holds), records
    overflow memory to the spool, and once PostgreSQL is back every answered request is stored exactly
    once. The load runs until each of these has happened, not for fixed times."""
    url = create_database(private_postgres.dsn)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    config = ledger_config(simulator.url, url, tmp_path / "spool", max_buffer_records=100)
    gateway = gateway_factory(_unlimited(config))
    with Load(gateway.url) as load:
        load.wait_for_answers(20, "answers before the outage")
        private_postgres.stop()
        load.wait_for_answers(len(load.answered) + 101, "answers while the ledger is down")
        deadline = time.monotonic() + 20
        while "Spooled" not in gateway.log():
            assert time.monotonic() < deadline, f"no records were spooled:\n{gateway.log()}"
            time.sleep(0.05)
        private_postgres.start()
        load.wait_for_answers(len(load.answered) + 20, "answers once PostgreSQL is back")
    deadline = time.monotonic() + 20
    while not load.answered <= stored_ids(dsn):
        assert time.monotonic() < deadline, "records were not all written after PostgreSQL came back"
        time.sleep(0.2)
    log = gateway.log()
    assert "Spooled" in log
    assert "writes again" in log
    gateway.stop()
    stored = stored_ids(dsn)
    assert load.answered <= stored
    assert not any(path.stat().st_size for path in (tmp_path / "spool").iterdir()), "the spool was replayed"


@pytest.mark.parametrize("outage", ["stopped", "killed"])
def test_sigkill_during_an_outage_loses_at_most_one_group_commit(
    simulator: ServerProcess, private_postgres: PrivatePostgres, tmp_path: Path, outage: str
) -> None:
    """PostgreSQL stopped (or SIGKILLed) under load, then the gateway SIGKILLed 1 s into the outage: the
    records answered in the outage (hundreds) are in the ledger after the restart's replay, all but at
    most one group commit's (20 ms of answers, about 20 here; 100 allowed for a loaded machine)."""
    run = crash_during_outage(
        simulator.url,
        private_postgres,
        tmp_path,
        kill_after=1.0,
        kill_database=outage == "killed",
        database={"flush_interval": "0.2s", "spool_commit_interval": "20ms"},
    )
    assert run.answered_in_outage > 200, "the gateway kept answering during the outage"
    assert run.spooled
    assert run.lost <= 100, run


def test_sigterm_during_an_outage_loses_nothing(
    simulator: ServerProcess, private_postgres: PrivatePostgres, tmp_path: Path
) -> None:
    """SIGTERM 1 s into a PostgreSQL outage: every answered request is in the ledger after the restart."""
    run = crash_during_outage(simulator.url, private_postgres, tmp_path, kill_after=1.0, sig=signal.SIGTERM)
    assert run.answered_in_outage > 200
    assert run.lost == 0, run


def test_spool_left_by_a_crash_is_replayed_on_start(tmp_path: Path) -> None:
    """Records spooled by a process that died are stored when the next one starts; a torn last line
    (the crash came mid-write) is skipped, and a replay is idempotent."""

    def record(index: int) -> UsageRecord:
        return UsageRecord(
            f"req-{index}",
            1_800_000_000.0 + index,
            "alice",
            "free",
            "key_x",
            "m",
            "/v1/chat/completions",
            200,
            10,
            5,
            15,
            15,
            0.0,
            False,
            False,
            False,
            3.0,
        )

    spool = Spool(tmp_path / "spool")
    spool.append([record(i) for i in range(5)])
    with spool.path.open("ab") as file:
        file.write(b'{"request_id": "req-torn", "crea')
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"

    async def run() -> int:
        database = Database(url)
        writer = LedgerWriter(SqlLedgerStore(database), spool, flush_interval=0.1)
        await writer.start()
        writer.submit(record(3))  # already spooled: must not count twice
        await writer.stop()
        rows = await SqlLedgerStore(database).aggregate(UsageQuery(0, 2e9, ("user",)))
        await database.aclose()
        return rows[0].requests

    assert asyncio.run(run()) == 5
    assert not spool.pending()
    assert not spool.claim()
