"""Alerts from the limiter's readings to a webhook, in one process: the notifier, the outbox in memory and
the sender, with a clock set by hand and a webhook that is a function (no sockets, no sleeps).

A threshold fires once per budget window whatever the readings; a delivery is signed over the timestamp
and the exact body; failures are retried on the schedule and given up after the last attempt; a refusal
(4xx) is not retried; a sender that died mid-way has its alert taken over once its lease ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import orjson
import pytest

from maas_gateway.alerts.backoff import RetrySchedule
from maas_gateway.alerts.notifier import AlertNotifier
from maas_gateway.alerts.outbox import InMemoryAlertOutbox
from maas_gateway.alerts.sender import AlertSender, WebhookTarget
from maas_gateway.alerts.signing import verify_signature
from maas_gateway.alerts.thresholds import ThresholdPolicy
from maas_gateway.limits import CounterReading
from tests.support.clock import FakeClock

SECRET = b"a-webhook-secret-of-some-length"
HOUR = 3600 * 500_000


class Webhook:
    """A webhook as a function: answers with the next queued status (or raises), and records what came."""

    def __init__(self) -> None:
        self.answers: list[int | Exception] = []
        self.received: list[tuple[str, bytes, dict[str, str]]] = []

    # The sender's ``Post`` signature: the timeout is the real client's to honour, not this function's.
    async def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:  # noqa: ASYNC109
        self.received.append((url, body, dict(headers)))
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, Exception):
            raise answer
        return answer

    def bodies(self) -> list[dict[str, object]]:
        return [orjson.loads(body) for _, body, _ in self.received]


def _reading(used: int, limit: int = 1000, window_start: float = HOUR, user: str = "alice") -> CounterReading:
    end = window_start + 3600
    return CounterReading(user, "free", "tokens/1h/*", limit, "tokens", "1h", window_start, end, used)


def _parts(
    clock: FakeClock, webhook: Webhook, *, max_attempts: int = 4
) -> tuple[InMemoryAlertOutbox, AlertNotifier, AlertSender]:
    outbox = InMemoryAlertOutbox()
    schedule = RetrySchedule(initial=1.0, multiplier=2.0, maximum=5.0, jitter=0.5, max_attempts=max_attempts)
    target = WebhookTarget("ops", "http://hooks.example/alerts", SECRET, 5.0)
    sender = AlertSender(
        outbox,
        {"ops": target},
        webhook.post,
        schedule,
        lease=60.0,
        poll_interval=1.0,
        clock=clock,
        jitter=lambda: 0.0,
    )
    notifier = AlertNotifier(outbox, ThresholdPolicy(), ["ops"], clock=clock)
    return outbox, notifier, sender


def test_each_threshold_fires_once_per_window_and_is_delivered_signed() -> None:
    """Readings crossing 50 and then 80 and 90 at once, repeated readings, and a lower reading afterwards
    queue 50, 80 and 90 once each; the next window starts afresh. Each body is signed over
    `<timestamp>.<body>` and carries its id in x-maas-alert-id."""
    clock = FakeClock(start=HOUR + 100)
    webhook = Webhook()
    _, notifier, sender = _parts(clock, webhook)

    async def scenario() -> None:
        for used in (100, 500, 500, 499, 950, 950, 700):
            notifier.observe([_reading(used)])
        notifier.observe([_reading(600, window_start=HOUR + 3600)])
        await notifier.store_queued()
        assert await sender.send_due() == 4

    asyncio.run(scenario())
    bodies = webhook.bodies()
    assert sorted((b["threshold_percent"], b["window"]["start"]) for b in bodies) == [  # type: ignore[index]
        (50, "2027-01-15T08:00:00Z"),
        (50, "2027-01-15T09:00:00Z"),
        (80, "2027-01-15T08:00:00Z"),
        (90, "2027-01-15T08:00:00Z"),
    ]
    for url, body, headers in webhook.received:
        assert url == "http://hooks.example/alerts"
        assert headers["x-maas-timestamp"] == str(int(clock.now))
        timestamp, signature = headers["x-maas-timestamp"], headers["x-maas-signature"]
        assert verify_signature(SECRET, body, timestamp, signature, clock.now)
        assert orjson.loads(body)["id"] == headers["x-maas-alert-id"]
    first = next(b for b in bodies if b["threshold_percent"] == 90)
    assert first["used"] == 950
    assert first["used_percent"] == 95.0
    assert first["limit"] == {"key": "tokens/1h/*", "limit": 1000, "unit": "tokens", "window": "1h"}


def test_a_second_notifier_or_a_restarted_one_adds_nothing_the_outbox_already_holds() -> None:
    """Another notifier over the same outbox (another replica, or this one after a restart) sees the same
    thresholds reached and stores nothing new."""
    clock = FakeClock(start=HOUR + 100)
    webhook = Webhook()
    outbox, notifier, sender = _parts(clock, webhook)
    other = AlertNotifier(outbox, ThresholdPolicy(), ["ops"], clock=clock)

    async def scenario() -> None:
        notifier.observe([_reading(820)])
        other.observe([_reading(830)])
        await notifier.store_queued()
        await other.store_queued()
        assert await sender.send_due() == 2

    asyncio.run(scenario())
    assert sorted(b["threshold_percent"] for b in webhook.bodies()) == [50, 80]  # type: ignore[type-var]


def test_failures_are_retried_on_the_schedule_until_the_webhook_accepts() -> None:
    """A connection error, a timeout and a 503 are each retried after 1, 2 then 4 seconds (no jitter
    here), not before; the fourth attempt is accepted and the alert is delivered."""
    clock = FakeClock(start=HOUR + 100)
    webhook = Webhook()
    webhook.answers = [ConnectionRefusedError(), TimeoutError(), 503]
    outbox, notifier, sender = _parts(clock, webhook)

    async def scenario() -> None:
        notifier.observe([_reading(500)])
        await notifier.store_queued()
        for wait in (1.0, 2.0, 4.0):
            assert await sender.send_due() == 1
            clock.advance(wait - 0.01)
            assert await sender.send_due() == 0
            clock.advance(0.01)
        assert await sender.send_due() == 1
        alert_id = orjson.loads(webhook.received[0][1])["id"]
        state = await outbox.state(alert_id)
        assert state is not None
        assert (state.state, state.attempts) == ("delivered", 4)
        assert state.last_error == "The webhook answered 503."

    asyncio.run(scenario())


def test_an_alert_is_given_up_after_its_last_attempt() -> None:
    """With two attempts allowed, a webhook answering 500 twice gets no third try; the alert is failed."""
    clock = FakeClock(start=HOUR + 100)
    webhook = Webhook()
    webhook.answers = [500, 500, 200]
    outbox, notifier, sender = _parts(clock, webhook, max_attempts=2)

    async def scenario() -> None:
        notifier.observe([_reading(500)])
        await notifier.store_queued()
        await sender.send_due()
        clock.advance(10)
        await sender.send_due()
        clock.advance(1000)
        assert await sender.send_due() == 0
        state = await outbox.state(orjson.loads(webhook.received[0][1])["id"])
        assert state is not None
        assert state.state == "failed"
        assert state.last_error == "The webhook answered 500. That was attempt 2, the last."

    asyncio.run(scenario())
    assert len(webhook.received) == 2


@pytest.mark.parametrize("status", [400, 401, 404])
def test_a_refusal_is_not_retried(status: int) -> None:
    """A 4xx other than 408 and 429 means the webhook refuses the alert: it is given up at once."""
    clock = FakeClock(start=HOUR + 100)
    webhook = Webhook()
    webhook.answers = [status]
    outbox, notifier, sender = _parts(clock, webhook)

    async def scenario() -> None:
        notifier.observe([_reading(500)])
        await notifier.store_queued()
        await sender.send_due()
        clock.advance(1000)
        assert await sender.send_due() == 0
        state = await outbox.state(orjson.loads(webhook.received[0][1])["id"])
        assert state is not None
        assert state.state == "failed"

    asyncio.run(scenario())


def test_a_claim_whose_sender_died_is_sent_again_after_its_lease() -> None:
    """A sender that claimed an alert and vanished (its process killed mid-POST) holds it for the lease;
    after it another sender delivers it, as attempt 2."""
    clock = FakeClock(start=HOUR + 100)
    webhook = Webhook()
    outbox, notifier, sender = _parts(clock, webhook)

    async def scenario() -> None:
        notifier.observe([_reading(500)])
        await notifier.store_queued()
        lost = await outbox.claim(clock(), 60.0, 10)  # the dead sender's claim
        assert len(lost) == 1
        clock.advance(59)
        assert await sender.send_due() == 0
        clock.advance(1)
        assert await sender.send_due() == 1
        state = await outbox.state(lost[0].event.alert_id)
        assert state is not None
        assert (state.state, state.attempts) == ("delivered", 2)

    asyncio.run(scenario())


def test_a_webhook_removed_from_the_configuration_gives_its_alerts_up() -> None:
    """An alert stored for a webhook the sender no longer knows is given up with a sentence saying so."""
    clock = FakeClock(start=HOUR + 100)
    webhook = Webhook()
    outbox, _, sender = _parts(clock, webhook)
    gone = AlertNotifier(outbox, ThresholdPolicy(), ["old-hook"], clock=clock)

    async def scenario() -> None:
        gone.observe([_reading(500)])
        await gone.store_queued()
        assert await sender.send_due() == 1
        clock.advance(1000)
        assert await sender.send_due() == 0  # given up, not retried

    asyncio.run(scenario())
    assert webhook.received == []


def test_the_schedule_grows_to_its_cap_and_jitter_only_shortens() -> None:
    """Waits double from the initial one up to the cap; jitter takes off at most its fraction."""
    schedule = RetrySchedule(initial=1.0, multiplier=2.0, maximum=10.0, jitter=0.2, max_attempts=5)
    assert [schedule.delay(n, lambda: 0.0) for n in range(1, 7)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert schedule.delay(3, lambda: 1.0) == pytest.approx(3.2)
    assert schedule.delay(1000, lambda: 0.0) == 10.0
    assert not schedule.exhausted(4)
    assert schedule.exhausted(5)


def test_a_store_that_fails_keeps_the_alerts_queued_in_order() -> None:
    """When the outbox cannot be written, nothing is dropped: the next attempt stores the same alerts."""
    clock = FakeClock(start=HOUR + 100)

    class Broken(InMemoryAlertOutbox):
        down = True

        async def enqueue(self, event):  # type: ignore[no-untyped-def]  # the parent's signature
            if self.down:
                raise ConnectionError("database down")
            return await super().enqueue(event)

    outbox = Broken()
    notifier = AlertNotifier(outbox, ThresholdPolicy(), ["ops"], clock=clock)

    async def scenario() -> None:
        notifier.observe([_reading(900)])
        with pytest.raises(ConnectionError):
            await notifier.store_queued()
        assert notifier.queued == 3
        outbox.down = False
        await notifier.store_queued()
        assert notifier.queued == 0
        claimed = await outbox.claim(clock(), 60.0, 10)
        assert sorted(c.event.threshold for c in claimed) == [50, 80, 90]

    asyncio.run(scenario())
