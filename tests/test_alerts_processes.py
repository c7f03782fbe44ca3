"""Budget alerts end to end, with real processes: gateways (`maas serve`) in front of the simulator,
Redis for shared limits, PostgreSQL or SQLite for the outbox, and a webhook receiver that checks every
signature (tests/support/webhook_receiver.py).

Three replicas crossing 50/80/90/100 % of one budget together deliver each threshold exactly once; a
receiver that is down gets its alerts once it is back; a gateway killed (SIGKILL) after storing alerts
and before delivering them has them delivered by the next gateway; a bad alerts section is refused with a
sentence; `maas alerts test` sends a signed sample and reports a refused signature.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml

from tests.support.configs import demo_dict
from tests.support.gateways import GatewayFactory
from tests.support.polling import wait_until
from tests.support.postgres_server import create_database, drop_database, throwaway_database
from tests.support.processes import GatewayProcess, ServerProcess, free_port, maas
from tests.support.redis_server import RedisServer

SECRET = "receiver-secret-0123456789abcdef"
SECRET_ENV = "MAAS_TEST_ALERT_SECRET"
RECEIVER = str(Path(__file__).parent / "support" / "webhook_receiver.py")
KEY = "carol_key"


def _receiver(directory: Path, port: int | None = None) -> ServerProcess:
    port = port or free_port()
    log = directory / f"receiver-{port}.log"
    return ServerProcess([sys.executable, RECEIVER, str(port), SECRET], port, log)


def _received(receiver: ServerProcess) -> dict[str, Any]:
    return dict(httpx.get(receiver.url + "/received", timeout=5).json())


def _config(
    backend: str, receiver_url: str, database_url: str, spool: Path, storage: str = "memory"
) -> dict[str, Any]:
    """The demo with a `metered` tier of 300 tokens a week (a week: a test never spans two windows in
    practice) for the user carol, alerts to the receiver, and quick retries."""
    config = demo_dict(backend)
    config["tiers"]["metered"] = {"limits": [{"limit": 300, "unit": "tokens", "window": "7d"}]}
    config["api_keys"].append({"user": "carol", "tier": "metered", "key": KEY})
    config["limits"]["storage"] = storage
    config["database"] = {"url": database_url, "spool_dir": str(spool), "flush_interval": "0.2s"}
    config["alerts"] = {
        "enabled": True,
        "webhooks": [
            {"name": "ops", "url": receiver_url + "/hook", "secret_env": SECRET_ENV, "timeout": "1s"}
        ],
        "backoff_initial": "0.2s",
        "backoff_max": "0.5s",
        "poll_interval": "0.2s",
        "lease": "3s",
    }
    return config


async def _spend(urls: list[str], concurrency: int = 12) -> int:
    """Call the gateways at once, round robin, until the budget refuses (429); return the refusals."""
    refused = 0
    async with httpx.AsyncClient(timeout=30) as client:

        async def call(url: str) -> int:
            answer = await client.post(
                url + "/v1/chat/completions",
                headers={"Authorization": f"Bearer {KEY}"},
                json={
                    "model": "simulator-model",
                    "messages": [{"role": "user", "content": "hi"}],
                    "max_tokens": 8,
                },
            )
            assert answer.status_code in (200, 429), answer.text
            return answer.status_code

        for _ in range(60):
            statuses = await asyncio.gather(*(call(urls[i % len(urls)]) for i in range(concurrency)))
            refused += statuses.count(429)
            if refused:
                return refused
    raise AssertionError("the budget never refused a request")


def _thresholds(receiver: ServerProcess) -> list[int]:
    return sorted(alert["threshold_percent"] for alert in _received(receiver)["alerts"])


def _env() -> dict[str, str]:
    return {SECRET_ENV: SECRET}


def _metric(gateway: GatewayProcess, name: str) -> float:
    text = httpx.get(gateway.metrics_url + "/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))


@pytest.fixture
def postgres_url() -> Iterator[str]:
    url = create_database()
    yield url
    drop_database(url)


def _outbox_states(url: str) -> list[str]:
    async def read() -> list[str]:
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
        try:
            return [row[0] for row in await connection.fetch("SELECT state FROM alert_outbox")]
        finally:
            await connection.close()

    return asyncio.run(read())


def test_three_replicas_deliver_each_threshold_exactly_once(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path, postgres_url: str
) -> None:
    """Three gateways sharing Redis and PostgreSQL spend one budget with concurrent calls until it refuses:
    the receiver gets 50, 80, 90 and 100 % once each, all signatures genuine, no repeat; the outbox
    holds four delivered alerts (so nothing more can come) and the replicas' metrics add up to four."""
    redis = RedisServer(tmp_path).start()
    try:
        with _receiver(tmp_path) as receiver:
            config = _config(simulator.url, receiver.url, postgres_url, tmp_path / "spool", redis.url)
            gateways = [gateway_factory(config, env=_env()) for _ in range(3)]
            asyncio.run(_spend([gateway.url for gateway in gateways]))
            wait_until(lambda: _outbox_states(postgres_url) == ["delivered"] * 4, "four delivered alerts", 30)
            assert _thresholds(receiver) == [50, 80, 90, 100]
            received = _received(receiver)
            assert (received["duplicates"], received["bad_signatures"]) == (0, 0)
            assert {alert["user"] for alert in received["alerts"]} == {"carol"}
            assert sum(_metric(gateway, "maas_alerts_fired_total") for gateway in gateways) == 4
            assert sum(_metric(gateway, "maas_alerts_delivered_total") for gateway in gateways) == 4
            hundred = next(a for a in received["alerts"] if a["threshold_percent"] == 100)
            assert hundred["used"] >= 300
            assert hundred["limit"] == {"key": "tokens/1w/*", "limit": 300, "unit": "tokens", "window": "1w"}
    finally:
        redis.stop()


def test_a_receiver_that_is_down_gets_its_alerts_when_it_is_back(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path
) -> None:
    """With the receiver's port closed, deliveries fail and are retried; once it listens again every
    threshold arrives, once."""
    port = free_port()
    url = f"sqlite+aiosqlite:///{tmp_path / 'maas.db'}"
    config = _config(simulator.url, f"http://127.0.0.1:{port}", url, tmp_path / "spool")
    gateway = gateway_factory(config, env=_env())
    asyncio.run(_spend([gateway.url]))
    wait_until(lambda: "could not be reached" in gateway.log(), "a failed delivery", 20)
    with _receiver(tmp_path, port) as receiver:
        wait_until(lambda: _thresholds(receiver) == [50, 80, 90, 100], "every threshold delivered", 30)
        assert _received(receiver)["duplicates"] == 0
    assert _metric(gateway, "maas_alert_attempts_failed_total") >= 1
    log = gateway.log()
    assert SECRET not in log
    assert f"127.0.0.1:{port}" not in log  # a webhook URL may carry a token: never logged


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with throwaway_database(request.param, tmp_path) as url:
        yield url


def test_a_gateway_killed_before_delivering_loses_no_alert(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path, database_url: str
) -> None:
    """A gateway stores its alerts, cannot deliver them (the receiver is down) and is killed with
    SIGKILL; the gateway started after it on the same database delivers each of them, once."""
    port = free_port()
    config = _config(simulator.url, f"http://127.0.0.1:{port}", database_url, tmp_path / "spool")
    first = gateway_factory(config, env=_env())
    asyncio.run(_spend([first.url]))
    wait_until(lambda: first.log().count("queued for the webhook") == 4, "four alerts stored", 20)
    first.stop(signal.SIGKILL)
    with _receiver(tmp_path, port) as receiver:
        gateway_factory(config, env=_env())
        wait_until(lambda: _thresholds(receiver) == [50, 80, 90, 100], "every threshold delivered", 30)
        assert _received(receiver)["duplicates"] == 0


def test_a_gateway_killed_in_the_middle_of_a_delivery_loses_no_alert(
    simulator: ServerProcess, gateway_factory: GatewayFactory, tmp_path: Path, postgres_url: str
) -> None:
    """The webhook holds the gateway's POSTs unanswered and the gateway is killed (SIGKILL) while they
    are in flight, their alerts claimed; once the claims' lease has run out, the next gateway sends them
    and each threshold is recorded once."""
    with _receiver(tmp_path) as receiver:
        httpx.post(receiver.url + "/status/0", timeout=5)  # hold every delivery
        config = _config(simulator.url, receiver.url, postgres_url, tmp_path / "spool")
        config["alerts"]["webhooks"][0]["timeout"] = "3s"
        config["alerts"]["lease"] = "4s"  # the next gateway waits for the dead one's claims to lapse
        first = gateway_factory(config, env=_env())
        asyncio.run(_spend([first.url]))
        wait_until(lambda: _received(receiver)["held"] >= 1, "a delivery in flight", 20)
        # The notifier writes its queue to the outbox in the background: wait until all four are stored
        # (one of them claimed and held), so the kill tests claims in flight, not a queue never written.
        wait_until(lambda: _outbox_states(postgres_url).count("pending") == 4, "four stored alerts", 20)
        first.stop(signal.SIGKILL)
        assert _outbox_states(postgres_url).count("pending") == 4
        httpx.post(receiver.url + "/status/204", timeout=5)
        gateway_factory(config, env=_env())
        wait_until(lambda: _thresholds(receiver) == [50, 80, 90, 100], "every threshold delivered", 60)
        assert _received(receiver)["duplicates"] == 0
        wait_until(lambda: _outbox_states(postgres_url) == ["delivered"] * 4, "four delivered alerts", 10)


def _write(config: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(config), "utf-8")
    return path


def _maas(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != SECRET_ENV} | (env or {})
    return subprocess.run(
        maas(*args), capture_output=True, text=True, timeout=60, check=False, env=environment
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"thresholds": [0, 50]}, "thresholds are percentages of the limit, from 1 to 1000"),
        ({"thresholds": [50, 50]}, "each threshold may be listed once"),
        ({"webhooks": []}, "alerts are enabled but no webhook is configured"),
        (
            {"overrides": [{"tier": "gold", "thresholds": [90]}]},
            "alerts.overrides.0.tier: unknown tier 'gold'",
        ),
        ({"lease": "1s"}, "make `lease` longer than every timeout"),
        ({"limits": False}, "alerts are enabled but limits are off"),
        ({"webhooks": [{"url": "ftp://x", "secret_env": "S"}]}, "must be an http:// or https:// URL"),
    ],
)
def test_a_bad_alerts_section_is_refused_naming_what_is_wrong(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    """`maas config validate` refuses each mistake with exit 2 and a message that names it."""
    config = _config("http://127.0.0.1:1", "http://127.0.0.1:2", "sqlite+aiosqlite:///x.db", tmp_path)
    change = dict(change)
    if change.pop("limits", True) is False:
        config["limits"]["enabled"] = False
    config["alerts"] |= change
    result = _maas("config", "validate", str(_write(config, tmp_path / "bad.yaml")))
    assert result.returncode == 2
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr


def test_a_gateway_without_the_webhook_secret_does_not_start(tmp_path: Path) -> None:
    """The secret's variable unset (or too short): `maas serve` stops before listening, naming it."""
    config = _config(
        "http://127.0.0.1:1", "http://127.0.0.1:2", f"sqlite+aiosqlite:///{tmp_path}/m.db", tmp_path
    )
    config["server"] = {"port": free_port()}
    path = _write(config, tmp_path / "maas.yaml")
    unset = _maas("serve", "--config", str(path))
    assert unset.returncode == 2
    assert f"the environment variable {SECRET_ENV}" in unset.stderr
    assert "is not set" in unset.stderr
    short = _maas("serve", "--config", str(path), env={SECRET_ENV: "short"})
    assert short.returncode == 2
    assert "needs at least 16" in short.stderr
    assert "short" not in short.stderr.replace("needs at least", "")


def test_alerts_test_sends_a_signed_sample_and_reports_a_refused_signature(tmp_path: Path) -> None:
    """`maas alerts test` sends a sample the receiver verifies (exit 0); signed with another secret, the
    receiver refuses it (401) and the command says so (exit 1)."""
    with _receiver(tmp_path) as receiver:
        config = _config("http://127.0.0.1:1", receiver.url, "sqlite+aiosqlite:///x.db", tmp_path)
        path = _write(config, tmp_path / "maas.yaml")
        good = _maas("alerts", "test", "--config", str(path), env={SECRET_ENV: SECRET})
        assert good.returncode == 0, good.stderr
        assert "ops: answered 204: it accepted the sample alert" in good.stdout
        [sample] = _received(receiver)["alerts"]
        assert sample["test"] is True
        assert sample["threshold_percent"] == 80
        wrong = _maas("alerts", "test", "--config", str(path), env={SECRET_ENV: "another-secret-of-length"})
        assert wrong.returncode == 1
        assert "ops: answered 401: it did not accept the sample alert" in wrong.stdout
        assert _received(receiver)["bad_signatures"] == 1
        unknown = _maas(
            "alerts", "test", "--config", str(path), "--webhook", "nope", env={SECRET_ENV: SECRET}
        )
        assert unknown.returncode == 2
        assert "No webhook is named 'nope' (configured: ops)." in unknown.stderr
