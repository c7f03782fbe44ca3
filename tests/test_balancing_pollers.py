"""The background pollers: the health checker and the load scraper with in-memory fetch functions, then
the real HTTP fetch against a small real server and against a `maas sim` process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web

from maas_gateway.balancing import (
    BackendState,
    FetchError,
    HealthChecker,
    HealthPolicy,
    HealthState,
    HealthTracker,
    HttpFetch,
    Lease,
    LoadSample,
    LoadScraper,
)
from maas_gateway.balancing.polling import BackendPoller
from tests.support.clock import FakeClock
from tests.support.processes import ServerProcess, free_port, maas

METRICS = b"""\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="chat"} 6.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="chat"} 2.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="chat"} 0.5
"""

Answer = tuple[int, bytes] | BaseException | None  # None: the fetch never answers


class ScriptedFetch:
    """A fetch function answering from ``answers`` (URL → status and body, an exception to raise, or
    None to hang), recording every URL asked for; ``during`` runs while a fetch is in progress."""

    def __init__(self, answers: dict[str, Answer]) -> None:
        self.answers = answers
        self.asked: list[str] = []
        self.during: Callable[[], None] | None = None

    async def __call__(self, url: str) -> tuple[int, bytes]:
        self.asked.append(url)
        if self.during is not None:
            self.during()
        answer = self.answers[url]
        if answer is None:
            await asyncio.Event().wait()
            raise AssertionError("unreachable: the fetch hangs until it is cancelled")
        if isinstance(answer, BaseException):
            raise answer
        return answer


async def _no_sleep(seconds: float) -> None:
    """Sleeps nothing: the rounds of a poller's loop follow each other at once."""


def _backend(url: str, **policy: int) -> BackendState:
    return BackendState(url, health=HealthTracker(HealthPolicy(**policy)))


# --- The health checker, in memory --------------------------------------------------------------------


def test_the_health_checker_asks_every_backend_and_feeds_its_tracker() -> None:
    """Each round asks `<backend>/health` of every backend; 2xx is healthy, another status or no answer
    is not, with the reason shown on the backend."""
    up, down, refused = (_backend(f"http://vllm-{n}:8000/") for n in range(3))
    fetch = ScriptedFetch(
        {
            "http://vllm-0:8000/health": (200, b""),
            "http://vllm-1:8000/health": (503, b"engine dead"),
            "http://vllm-2:8000/health": ConnectionRefusedError(111, "Connection refused"),
        }
    )
    checker = HealthChecker([up, down, refused], fetch, interval=5, timeout=1)
    asyncio.run(checker.poll_once())
    assert sorted(fetch.asked) == [f"http://vllm-{n}:8000/health" for n in range(3)]
    now = 0.0
    assert [b.health.state(now) for b in (up, down, refused)] == [
        HealthState.HEALTHY,
        HealthState.UNHEALTHY,
        HealthState.UNHEALTHY,
    ]
    assert down.health.reason(now) == "The health check answered HTTP 503."
    assert refused.health.reason(now) == (
        "The health check failed: http://vllm-2:8000/health cannot be fetched (ConnectionRefusedError)."
    )


def test_health_check_thresholds_apply_across_rounds() -> None:
    """A backend that starts failing is marked unhealthy only after `unhealthy_threshold` rounds, and
    healthy again after `healthy_threshold` good rounds."""
    backend = _backend("http://vllm-0:8000", healthy_threshold=2, unhealthy_threshold=2)
    url = "http://vllm-0:8000/health"
    fetch = ScriptedFetch({url: (200, b"")})
    checker = HealthChecker([backend], fetch, interval=5, timeout=1)
    seen = []
    for answer in [(200, b""), (500, b""), (500, b""), (200, b""), (200, b"")]:
        fetch.answers[url] = answer
        asyncio.run(checker.poll_once())
        seen.append(backend.available(0.0))
    assert seen == [True, True, False, False, True]
    assert checker.rounds == 5


def test_a_backend_that_never_answers_is_cut_off_without_delaying_the_others() -> None:
    """A hanging backend counts as failed after `timeout`; the others' results are recorded in the same
    round."""
    hanging, fine = _backend("http://vllm-0:8000"), _backend("http://vllm-1:8000")
    fetch = ScriptedFetch({"http://vllm-0:8000/health": None, "http://vllm-1:8000/health": (200, b"")})
    checker = HealthChecker([hanging, fine], fetch, interval=5, timeout=0.05)
    asyncio.run(checker.poll_once())
    assert hanging.health.reason(0.0) == (
        "The health check failed: http://vllm-0:8000/health did not answer within 0.05 s."
    )
    assert fine.available(0.0)


def test_a_failing_backend_is_logged_when_it_starts_and_stops_failing_not_every_round(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One warning when a backend starts failing (with why), one line when it answers again, and nothing
    for the rounds in between; a password in its URL is not logged."""
    backend = _backend("http://gw:s3cret@vllm-0:8000")
    url = "http://gw:s3cret@vllm-0:8000/health"
    fetch = ScriptedFetch({url: (503, b"")})
    checker = HealthChecker([backend], fetch, interval=5, timeout=1)
    with caplog.at_level(logging.INFO, logger="maas_gateway.balancing"):
        for answer in [(503, b""), (503, b""), (503, b""), (200, b""), (200, b"")]:
            fetch.answers[url] = answer
            asyncio.run(checker.poll_once())
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            "http://gw:***@vllm-0:8000/health fails (The health check answered HTTP 503.); polling goes on.",
        ),
        ("INFO", "http://gw:***@vllm-0:8000/health answers again."),
    ]


def test_the_polling_loop_sleeps_its_interval_and_survives_a_failing_poll(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`run` polls, sleeps `interval`, and goes on even when a poll raises (it is logged, the backend
    counts as failing)."""

    class Broken(BackendPoller):
        path = "/broken"

        async def poll(self, backend: BackendState) -> str | None:
            raise RuntimeError("a bug in a poll")

    class Stop(Exception):
        pass

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:
            raise Stop

    poller = Broken(
        [_backend("http://vllm-0:8000")], ScriptedFetch({}), interval=0.25, timeout=1, sleep=sleep
    )
    with caplog.at_level(logging.ERROR, logger="maas_gateway.balancing"), pytest.raises(Stop):
        asyncio.run(poller.run())
    assert (poller.rounds, slept) == (3, [0.25, 0.25, 0.25])
    assert [r.getMessage() for r in caplog.records] == [
        "Polling http://vllm-0:8000/broken failed unexpectedly."
    ] * 3


# --- The load scraper, in memory ----------------------------------------------------------------------


def test_the_scraper_stores_each_sample_with_its_time_and_the_requests_sent_before_it() -> None:
    """A sample is stored with the clock time it arrived and the backend's request count from before the
    scrape was sent: a request that starts while the scrape is on its way is not in the sample."""
    clock = FakeClock()
    backend = _backend("http://vllm-0:8000")
    earlier = Lease(backend)
    fetch = ScriptedFetch({"http://vllm-0:8000/metrics": (200, METRICS)})
    leases: list[Lease] = []
    fetch.during = lambda: leases.append(Lease(backend))
    scraper = LoadScraper([backend], fetch, interval=0.25, timeout=1, model="chat", clock=clock)
    asyncio.run(scraper.poll_once())
    reading = backend.load
    assert reading is not None
    assert reading.sample == LoadSample(waiting=2, running=6, kv_cache_usage=0.5)
    assert (reading.at, reading.started_before) == (clock.now, 1)
    for lease in [earlier, *leases]:
        lease.release()


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ((500, b"oops"), "The metrics answered HTTP 500."),
        ((200, b"# nothing here\n"), "The metrics have no vLLM queue gauges for the model 'chat'."),
        (
            (200, b"vllm:num_requests_waiting 1\nvllm:num_requests_running lots\n"),
            "The vLLM metrics cannot be parsed: could not convert string to float: 'lots'.",
        ),
        (
            OSError("network unreachable"),
            "http://vllm-0:8000/metrics cannot be fetched (OSError).",
        ),
    ],
)
def test_a_failed_scrape_keeps_the_last_sample_and_says_why(answer: Answer, problem: str) -> None:
    """An error status, text without the gauges, malformed gauges or no answer leave the previous sample
    to age, and the backend shows the reason until a scrape succeeds again."""
    clock = FakeClock()
    backend = _backend("http://vllm-0:8000")
    url = "http://vllm-0:8000/metrics"
    fetch = ScriptedFetch({url: (200, METRICS)})
    scraper = LoadScraper([backend], fetch, interval=0.25, timeout=1, model="chat", clock=clock)
    asyncio.run(scraper.poll_once())
    fetch.answers[url] = answer
    clock.advance(0.25)
    asyncio.run(scraper.poll_once())
    snapshot = backend.snapshot(clock.now)
    assert (snapshot.load, snapshot.load_age, snapshot.load_error) == (
        LoadSample(waiting=2, running=6, kv_cache_usage=0.5),
        0.25,
        problem,
    )
    fetch.answers[url] = (200, METRICS)
    asyncio.run(scraper.poll_once())
    assert backend.snapshot(clock.now).load_error is None


# --- The real fetch -----------------------------------------------------------------------------------


@asynccontextmanager
async def _serving(routes: dict[str, Callable[[web.Request], Awaitable[web.Response]]]) -> AsyncIterator[str]:
    """A small real HTTP server on a free loopback port, answering ``routes``; yields its base URL."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def test_the_http_fetch_scrapes_and_checks_a_real_server() -> None:
    """Over real HTTP the scraper reads a vLLM-shaped `/metrics` and the checker a `/health`; a password
    in the backend URL is sent as Basic auth."""
    authorizations: list[str | None] = []

    async def metrics(request: web.Request) -> web.Response:
        authorizations.append(request.headers.get("authorization"))
        return web.Response(body=METRICS, content_type="text/plain")

    async def health(request: web.Request) -> web.Response:
        return web.Response(status=503)

    async def main() -> None:
        async with _serving({"/metrics": metrics, "/health": health}) as url:
            backend = _backend(url.replace("http://", "http://gw:s3cret@"))
            fetch = HttpFetch(timeout=2)
            try:
                await LoadScraper([backend], fetch, interval=0.25, timeout=2, model="chat").poll_once()
                await HealthChecker([backend], fetch, interval=5, timeout=2).poll_once()
            finally:
                await fetch.aclose()
            assert backend.load is not None
            assert backend.load.sample == LoadSample(waiting=2, running=6, kv_cache_usage=0.5)
            assert backend.health.reason(0.0) == "The health check answered HTTP 503."
            assert authorizations == ["Basic Z3c6czNjcmV0"]

    asyncio.run(main())


def test_the_http_fetch_bounds_time_and_size_and_names_the_url_without_its_password() -> None:
    """A server slower than the timeout, an answer larger than the limit and a refused connection raise
    `FetchError` with a sentence that names the URL, password hidden."""

    answer_now = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await answer_now.wait()  # until the test has seen the fetch give up
        return web.Response(text="late")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 5000)

    async def main() -> None:
        async with _serving({"/slow": slow, "/big": big}) as url:
            fetch = HttpFetch(timeout=0.2, max_body_bytes=4096)
            secret = url.replace("http://", "http://gw:s3cret@")
            shown = url.replace("http://", "http://gw:***@")
            try:
                with pytest.raises(FetchError) as slow_error:
                    await fetch(secret + "/slow")
                answer_now.set()
                with pytest.raises(FetchError) as big_error:
                    await fetch(secret + "/big")
                with pytest.raises(FetchError) as refused_error:
                    await fetch(f"http://gw:s3cret@127.0.0.1:{free_port()}/health")
            finally:
                await fetch.aclose()
        assert str(slow_error.value) == f"{shown}/slow did not answer within 0.2 s."
        assert str(big_error.value) == f"{shown}/big answered more than 4096 bytes."
        assert str(refused_error.value).startswith("http://gw:***@127.0.0.1:")
        assert "cannot be fetched (ConnectError" in str(refused_error.value)
        assert "s3cret" not in str(refused_error.value)

    asyncio.run(main())


def test_the_health_checker_follows_a_real_simulator_going_down_and_coming_back(tmp_path: Path) -> None:
    """Against a `maas sim` process: healthy while it runs; unhealthy after `unhealthy_threshold` failed
    rounds once it is stopped; healthy again after `healthy_threshold` rounds once it is restarted."""
    port = free_port()
    simulator = ServerProcess(maas("sim", "--port", str(port)), port, tmp_path / "sim.log")
    backend = _backend(simulator.url, healthy_threshold=2, unhealthy_threshold=2)

    async def rounds(checker: HealthChecker, count: int) -> list[bool]:
        seen = []
        for _ in range(count):
            await checker.poll_once()
            seen.append(backend.available(0.0))
        return seen

    async def main() -> None:
        fetch = HttpFetch(timeout=2)
        checker = HealthChecker([backend], fetch, interval=0.1, timeout=2)
        try:
            with simulator:
                assert await rounds(checker, 2) == [True, True]
            assert await rounds(checker, 2) == [True, False]
            assert "cannot be fetched (ConnectError" in (backend.health.reason(0.0) or "")
            with simulator:
                assert await rounds(checker, 2) == [False, True]
        finally:
            await fetch.aclose()

    asyncio.run(main())
