"""`maas sim` processes of a test's own, and their vLLM metrics read the way Prometheus reads them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import ServerProcess, free_port, maas

__all__ = ["VllmMetrics", "simulator_client", "simulator_fleet", "vllm_metrics", "wait_for_metrics"]


@contextmanager
def simulator_fleet(directory: Path, count: int, *options: str) -> Iterator[list[ServerProcess]]:
    """``count`` simulator processes started with the same ``options``; all stopped at the end."""
    started: list[ServerProcess] = []
    try:
        for index in range(count):
            port = free_port()
            command = maas("sim", "--port", str(port), *options)
            started.append(ServerProcess(command, port, directory / f"sim-{index}.log").start())
        yield started
    finally:
        for server in started:
            server.stop()


@contextmanager
def simulator_client(directory: Path, *options: str, timeout: float = 10) -> Iterator[httpx.Client]:
    """An HTTP client for a simulator process of its own, started with ``options``."""
    port = free_port()
    command = maas("sim", "--port", str(port), *options)
    with (
        ServerProcess(command, port, directory / f"sim-{port}.log") as server,
        httpx.Client(base_url=server.url, timeout=timeout) as http,
    ):
        yield http


class VllmMetrics:
    """One scrape of a simulator's (or a vLLM server's) ``/metrics``."""

    def __init__(self, text: str) -> None:
        self.samples = [
            (sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        ]

    def value(self, name: str, **labels: str) -> float:
        """The value of the one sample called ``name`` whose labels include ``labels``."""
        found = [
            value
            for sample, sample_labels, value in self.samples
            if sample == name and labels.items() <= sample_labels.items()
        ]
        assert len(found) == 1, f"{len(found)} samples of {name} with {labels}, not one"
        return found[0]

    def labels(self, name: str) -> list[dict[str, str]]:
        """The label sets of the samples called ``name``."""
        return [sample_labels for sample, sample_labels, _ in self.samples if sample == name]


def vllm_metrics(client: httpx.Client) -> VllmMetrics:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return VllmMetrics(response.text)


def wait_for_metrics(
    client: httpx.Client, condition: Callable[[VllmMetrics], bool], timeout: float = 10
) -> VllmMetrics:
    """The first scrape that meets ``condition``, for changes the server makes on its own time (such as
    noticing that a client has gone)."""
    deadline = time.monotonic() + timeout
    while True:
        scrape = vllm_metrics(client)
        if condition(scrape):
            return scrape
        assert time.monotonic() < deadline, f"the metrics never met the condition: {scrape.samples}"
        time.sleep(0.02)
