"""Spreading a model's requests over its backends: health, balancing policies, retries, background polls.

Plain units (docs/routing.md), wired in by ``application/``. A ``BackendPool`` holds a model's
``BackendState``s and a ``Picker`` (``RoundRobin``, ``LeastOutstanding``, ``QueueAware``); ``pick`` gives a
``Lease`` that counts the request in flight until released and reports its outcome to the backend's
``HealthTracker``. ``HealthChecker`` and ``LoadScraper`` poll the backends in the background; a pick only
reads what they stored. A backend at its ``max_in_flight`` is not picked; ``wait_for_room`` waits for one
to end a request. ``RetryBudget`` bounds retries to a share of requests. A ``BackendRegistry`` keeps
each model's ``ModelBackends`` (pool, retry budget, counts), built from plain ``PoolSpec``s, across reloads.
"""

from maas_gateway.balancing.backend import BackendSnapshot, BackendState, display_url
from maas_gateway.balancing.base import Picker, ScoringPicker
from maas_gateway.balancing.fetch import Fetch, FetchError, HttpFetch
from maas_gateway.balancing.health import FailureKind, HealthPolicy, HealthState, HealthTracker
from maas_gateway.balancing.health_checker import HealthChecker
from maas_gateway.balancing.lease import Lease
from maas_gateway.balancing.least_outstanding import LeastOutstanding
from maas_gateway.balancing.load import LoadReading, LoadSample
from maas_gateway.balancing.load_scraper import LoadScraper
from maas_gateway.balancing.model_backends import BalancingCounts, ModelBackends
from maas_gateway.balancing.polling import BackendPoller
from maas_gateway.balancing.pool import BackendPool
from maas_gateway.balancing.queue_aware import QueueAware
from maas_gateway.balancing.registry import BackendRegistry, PollPlan, polls
from maas_gateway.balancing.retry_budget import RetryBudget
from maas_gateway.balancing.room import wait_for_room
from maas_gateway.balancing.round_robin import RoundRobin
from maas_gateway.balancing.specs import BackendSpec, PickerSpec, PollSpec, PoolSpec, RetrySpec, RoomSpec
from maas_gateway.balancing.vllm_metrics import MetricsFormatError, parse_vllm_load

__all__ = [
    "BackendPoller",
    "BackendPool",
    "BackendRegistry",
    "BackendSnapshot",
    "BackendSpec",
    "BackendState",
    "BalancingCounts",
    "FailureKind",
    "Fetch",
    "FetchError",
    "HealthChecker",
    "HealthPolicy",
    "HealthState",
    "HealthTracker",
    "HttpFetch",
    "Lease",
    "LeastOutstanding",
    "LoadReading",
    "LoadSample",
    "LoadScraper",
    "MetricsFormatError",
    "ModelBackends",
    "Picker",
    "PickerSpec",
    "PollPlan",
    "PollSpec",
    "PoolSpec",
    "QueueAware",
    "RetryBudget",
    "RetrySpec",
    "RoomSpec",
    "RoundRobin",
    "ScoringPicker",
    "display_url",
    "parse_vllm_load",
    "polls",
    "wait_for_room",
]
