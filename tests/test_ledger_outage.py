"""Outage mode of the ledger writer, in-process: when records go to the spool, and that none is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import orjson

from maas_gateway.metering import LedgerWriter, Spool, UsageQuery, UsageRecord, UsageRow
from maas_gateway.metering.outage import OutagePolicy
from tests.support.clock import FakeClock


def record(index: int) -> UsageRecord:
    return UsageRecord(
        f"req-{index}", 1_800_000_000.0, "alice", "free", "key_x", "m", "/v1/chat/completions", 200,
        10, 5, 15, 15, 0.0, False, False, False, 3.0,
    )  # fmt: skip


class FlakyStore:
    """A ledger store that is up, down (refuses at once) or hung (waits until released); it keeps every
    write so a test can see both what is stored and whether anything was written twice."""

    def __init__(self) -> None:
        self.up = True
        self.hang: asyncio.Event | None = None
        self.stored: dict[str, UsageRecord] = {}
        self.writes = 0

    async def start(self) -> None:
        if not self.up:  # as SqlLedgerStore, whose start connects
            raise ConnectionRefusedError("the database is down")

    async def write(self, records: Sequence[UsageRecord]) -> None:
        if self.hang is not None:
            await self.hang.wait()
        if not self.up:
            raise ConnectionRefusedError("the database is down")
        self.writes += 1
        for item in records:
            self.stored.setdefault(item.request_id, item)

    async def aggregate(self, query: UsageQuery) -> list[UsageRow]:
        return []

    async def recent(self, user: str, *, since: float, limit: int) -> list[UsageRecord]:
        return []

    async def aclose(self) -> None:
        return None


def spooled_ids(spool: Spool) -> list[str]:
    files = [spool.path, *spool.directory.glob("usage-spool.replay-*")]
    return [item.request_id for path in files if path.exists() for item in Spool.read(path)]


def test_policy_enters_outage_on_failure_or_stall_and_leaves_on_success() -> None:
    """A failed write starts an outage (once), a write in flight past ``stall_after`` spools too, and a
    successful write ends the outage."""
    clock = FakeClock(1000.0)
    policy = OutagePolicy(stall_after=1.0, clock=clock)
    assert not policy.spooling()
    policy.write_started()
    clock.now += 0.9
    assert not policy.spooling()
    clock.now += 0.2
    assert policy.stalled()
    assert policy.spooling()
    policy.write_ended()
    assert not policy.spooling()
    assert policy.failed()
    assert not policy.failed()
    assert policy.spooling()
    assert policy.succeeded()
    assert not policy.succeeded()
    assert not policy.spooling()


def test_a_failed_flush_spools_the_buffer_and_later_records_go_by_group_commit(tmp_path: Path) -> None:
    """Once a flush fails, the records in memory are in the spool at once; later records reach it with
    the next group commit, not at the next flush; once the database is back, the spool is replayed and
    the outage ends, each record stored once."""
    store = FlakyStore()
    spool = Spool(tmp_path / "spool")

    async def run() -> None:
        writer = LedgerWriter(store, spool, flush_interval=3600)
        await writer.flush()
        store.up = False
        for index in range(3):
            writer.submit(record(index))
        assert not await writer.flush()
        assert writer.outage.down
        assert writer.buffered == 0
        assert sorted(spooled_ids(spool)) == ["req-0", "req-1", "req-2"]
        writer.submit(record(3))
        await writer.commit()
        assert "req-3" in spooled_ids(spool)
        assert not await writer.flush()  # the replay fails: the claimed file stays for the next one
        writer.submit(record(4))
        store.up = True
        assert await writer.flush()
        assert not writer.outage.down
        await writer.stop()

    asyncio.run(run())
    assert sorted(store.stored) == [f"req-{i}" for i in range(5)]
    assert not spooled_ids(spool)


def test_the_group_commit_task_spools_during_an_outage_without_a_flush(tmp_path: Path) -> None:
    """During an outage the background committer, not the (hour-long) flush interval, moves records
    to the spool: within a few commit intervals of being submitted they are on disk."""
    store = FlakyStore()
    spool = Spool(tmp_path / "spool")

    async def run() -> None:
        store.up = False
        writer = LedgerWriter(store, spool, flush_interval=3600, spool_commit_interval=0.01)
        await writer.start()  # its first flush fails: an outage from the start
        writer.submit(record(7))
        for _ in range(200):
            if spooled_ids(spool):
                break
            await asyncio.sleep(0.01)
        assert spooled_ids(spool) == ["req-7"]
        await writer.stop(grace_seconds=1)

    asyncio.run(run())


def test_a_hung_write_spools_its_batch_and_the_buffer(tmp_path: Path) -> None:
    """A write that hangs (the database neither answers nor refuses) counts as an outage once it has
    been in flight past ``stall_after``: a commit spools the records in memory and a copy of the batch
    in flight. When the write finally succeeds, the replay of the copy stores nothing twice."""
    clock = FakeClock(1000.0)
    store = FlakyStore()
    store.hang = asyncio.Event()
    spool = Spool(tmp_path / "spool")

    async def run() -> None:
        writer = LedgerWriter(store, spool, outage=OutagePolicy(stall_after=1.0, clock=clock))
        writer.submit(record(1))
        flushing = asyncio.create_task(writer.flush())
        await asyncio.sleep(0)  # the flush takes record 1 and hangs in the write
        writer.submit(record(2))
        assert not writer.outage.spooling(), "not yet stalled: records wait in memory"
        clock.now += 1.5
        assert writer.outage.spooling()
        await writer.commit()
        assert sorted(spooled_ids(spool)) == ["req-1", "req-2"]
        assert store.hang is not None
        store.hang.set()
        assert await flushing
        assert await writer.flush()  # replays the spool: both ids already or newly stored, once each

    asyncio.run(run())
    assert sorted(store.stored) == ["req-1", "req-2"]


def test_sigterm_during_an_outage_spools_at_once(tmp_path: Path) -> None:
    """A graceful stop during an outage puts every record in the spool, whatever the grace period."""
    store = FlakyStore()
    spool = Spool(tmp_path / "spool")

    async def run() -> None:
        store.up = False
        writer = LedgerWriter(store, spool, flush_interval=3600)
        await writer.start()
        for index in range(10):
            writer.submit(record(index))
        await writer.stop(grace_seconds=0.5)

    asyncio.run(run())
    assert sorted(spooled_ids(spool)) == sorted(f"req-{i}" for i in range(10))


def test_a_record_appended_after_a_torn_line_is_kept(tmp_path: Path) -> None:
    """A crash mid-write leaves a torn last line; the next append starts on a line of its own."""
    spool = Spool(tmp_path / "spool")
    spool.append([record(1)])
    with spool.path.open("ab") as file:
        file.write(b'{"request_id": "req-torn", "crea')
    spool.append([record(2)])
    assert [item.request_id for item in Spool.read(spool.path)] == ["req-1", "req-2"]


def test_a_record_spooled_before_the_failed_field_existed_is_replayed(tmp_path: Path) -> None:
    """A spool written by an earlier version has no ``failed`` field: its records load as not failed."""
    spool = Spool(tmp_path / "spool")
    old = record(1).to_dict()
    del old["failed"]
    spool.directory.mkdir(parents=True, exist_ok=True)
    spool.path.write_bytes(orjson.dumps(old) + b"\n")
    [replayed] = Spool.read(spool.path)
    assert (replayed.request_id, replayed.failed) == ("req-1", False)


def test_records_wait_in_memory_when_the_spool_cannot_be_written(tmp_path: Path) -> None:
    """With the database down and the spool unwritable, records stay in memory up to ``max_buffer``;
    past it the oldest are dropped and counted, so memory stays bounded."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    store = FlakyStore()
    store.up = False

    async def run() -> LedgerWriter:
        writer = LedgerWriter(store, Spool(blocker / "spool"), max_buffer=100)
        for index in range(150):
            writer.submit(record(index))
        assert not await writer.flush()
        return writer

    writer = asyncio.run(run())
    assert writer.buffered == 100
    assert writer.dropped == 50
