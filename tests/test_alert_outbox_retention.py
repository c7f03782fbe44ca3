"""The alert outbox's purge in the background: settled alerts go once their window ended more than
``alerts.outbox_retention`` ago, in batches, on SQLite and PostgreSQL as in memory; a purged alert's
threshold never fires again in its window; the retention is configured, with a floor."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pydantic
import pytest

from maas_gateway.alerts.events import AlertEvent
from maas_gateway.alerts.outbox import AlertOutbox, InMemoryAlertOutbox
from maas_gateway.alerts.retention import OutboxRetention
from maas_gateway.alerts.sql_outbox import SqlAlertOutbox
from maas_gateway.config.alerts_settings import AlertsSettings
from tests.support.clock import FakeClock
from tests.support.store_contract import STORE_KINDS, contract_runner, started

Contract = Callable[[AlertOutbox], Awaitable[None]]
DAY = 86400
WINDOW_END = 1_796_000_000


def _event(alert_id: str, threshold: int) -> AlertEvent:
    return AlertEvent(
        alert_id=alert_id,
        webhook="ops",
        user="alice",
        tier="free",
        limit_key="tokens/1d/*",
        limit=1000,
        unit="tokens",
        window="1d",
        window_start=WINDOW_END - DAY,
        window_end=WINDOW_END,
        threshold=threshold,
        used=threshold * 10,
        created_at=WINDOW_END - 3600.0,
    )


@pytest.fixture(params=STORE_KINDS)
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[Contract], None]]:
    """Runs a scenario against a fresh outbox of the parametrized kind."""
    runs: Iterator[Callable[[Contract], None]] = contract_runner(
        request.param, tmp_path, InMemoryAlertOutbox, started(SqlAlertOutbox)
    )
    yield from runs


def test_settled_alerts_are_purged_after_the_retention_and_never_fire_again(
    run: Callable[[Contract], None],
) -> None:
    """Within the retention after the window's end nothing goes; after it, the delivered alerts go in
    batches of the configured size and their thresholds are refused if the budget reads them again."""

    async def contract(outbox: AlertOutbox) -> None:
        clock = FakeClock(WINDOW_END - 3600.0)
        retention = OutboxRetention(outbox, lambda: 7 * DAY, batch_size=lambda: 2, clock=clock)
        for threshold in (50, 80, 90, 100, 110):
            assert await outbox.enqueue(_event(f"t{threshold}", threshold))
        for claimed in await outbox.claim(clock(), lease=60.0, limit=10):
            assert await outbox.delivered(claimed, clock())
        clock.advance(7 * DAY)  # the window ended 7 days less an hour ago
        assert await retention.purge_once() == 0
        assert not await outbox.enqueue(_event("again", 50))  # still stored: the unique row refuses it
        clock.advance(3600.0)
        assert await retention.purge_once() == 5
        assert await outbox.state("t50") is None
        for threshold in (50, 80, 90, 100, 110):
            assert not await outbox.enqueue(_event(f"again-{threshold}", threshold))
        assert await retention.purge_once() == 0

    run(contract)


def test_no_retention_keeps_every_alert() -> None:
    """``outbox_retention: null`` purges nothing, however old."""

    async def scenario() -> None:
        outbox = InMemoryAlertOutbox()
        assert await outbox.enqueue(_event("kept", 50))
        for claimed in await outbox.claim(WINDOW_END, lease=60.0, limit=10):
            assert await outbox.delivered(claimed, WINDOW_END)
        clock = FakeClock(WINDOW_END + 1000 * DAY)
        assert await OutboxRetention(outbox, lambda: None, clock=clock).purge_once() == 0
        assert await outbox.state("kept") is not None

    asyncio.run(scenario())


def test_the_retention_defaults_to_thirty_days_and_is_at_least_an_hour() -> None:
    """The default keeps a month of settled alerts; a retention under an hour is refused, since an
    alert's window must be well over before its row may go."""
    assert AlertsSettings().outbox_retention == 30 * DAY
    assert AlertsSettings(outbox_retention=None).outbox_retention is None
    with pytest.raises(pydantic.ValidationError, match="greater than or equal to 3600"):
        AlertsSettings(outbox_retention=60)
