"""The balancing policies: one contract every picker keeps, then what each one does of its own."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence

import pytest

from maas_gateway.balancing import (
    BackendState,
    Lease,
    LeastOutstanding,
    LoadSample,
    Picker,
    QueueAware,
    RoundRobin,
)
from maas_gateway.balancing.affinity import AffinityScores, affinity_hash, rendezvous_index
from tests.support.clock import FakeClock

PickerFactory = Callable[[FakeClock], Picker]

STALE_AFTER = 1.0


def _queue_aware(clock: FakeClock) -> Picker:
    return QueueAware(stale_after=STALE_AFTER, clock=clock)


def _queue_aware_with_affinity(clock: FakeClock) -> Picker:
    return QueueAware(stale_after=STALE_AFTER, affinity_margin=2, clock=clock)


PICKERS: dict[str, PickerFactory] = {
    "round-robin": lambda clock: RoundRobin(),
    "least-outstanding": lambda clock: LeastOutstanding(),
    "least-outstanding+affinity": lambda clock: LeastOutstanding(affinity_margin=2),
    "queue-aware": _queue_aware,
    "queue-aware+affinity": _queue_aware_with_affinity,
}


def _backends(count: int, weights: Sequence[float] | None = None) -> list[BackendState]:
    weights = weights or [1.0] * count
    return [BackendState(f"http://vllm-{index}:8000", weight=weights[index]) for index in range(count)]


def _sample_all(backends: Sequence[BackendState], clock: FakeClock, running: float = 4) -> None:
    """Every backend reports the same load now (queue-aware pickers then have fresh data)."""
    for backend in backends:
        backend.record_load(
            LoadSample(waiting=0, running=running, kv_cache_usage=0.1),
            at=clock.now,
            started_before=backend.started,
        )


@pytest.fixture(params=list(PICKERS))
def make_picker(request: pytest.FixtureRequest) -> PickerFactory:
    factory: PickerFactory = PICKERS[request.param]
    return factory


# --- The contract -------------------------------------------------------------------------------------


@pytest.mark.parametrize("affinity_key", [None, "You are a helpful assistant."])
def test_a_picker_picks_only_among_its_candidates(
    make_picker: PickerFactory, affinity_key: str | None
) -> None:
    """Whatever the candidates (a different subset each time), the lease is on one of them."""
    clock = FakeClock()
    backends = _backends(5)
    _sample_all(backends, clock)
    picker = make_picker(clock)
    for round_ in range(50):
        candidates = [b for index, b in enumerate(backends) if (index + round_) % 3 != 0]
        with picker.pick(candidates, affinity_key) as lease:
            assert lease.backend in candidates


def test_held_requests_spread_evenly_over_equal_backends(make_picker: PickerFactory) -> None:
    """Picks that stay in flight land on every backend in turn: 4 backends, 40 picks, 10 each."""
    clock = FakeClock()
    backends = _backends(4)
    _sample_all(backends, clock)
    picker = make_picker(clock)
    leases = [picker.pick(backends) for _ in range(40)]
    assert [b.in_flight for b in backends] == [10, 10, 10, 10]
    for lease in leases:
        lease.release()


def test_short_requests_one_after_another_still_rotate(make_picker: PickerFactory) -> None:
    """Requests released before the next pick (so every backend looks idle) are not all sent to the first
    backend: ties are broken by rotation."""
    clock = FakeClock()
    backends = _backends(3)
    _sample_all(backends, clock)
    picker = make_picker(clock)
    picked: Counter[str] = Counter()
    for _ in range(30):
        with picker.pick(backends) as lease:
            picked[lease.backend.url] += 1
    assert sorted(picked.values()) == [10, 10, 10]


def test_weights_set_the_share_of_requests(make_picker: PickerFactory) -> None:
    """A backend of weight 3 holds three times the requests of one of weight 1 (within a few percent)."""
    clock = FakeClock()
    backends = _backends(2, weights=[3, 1])
    _sample_all(backends, clock, running=0)
    picker = make_picker(clock)
    leases = [picker.pick(backends) for _ in range(400)]
    heavy, light = (b.in_flight for b in backends)
    assert heavy + light == 400
    assert 0.72 <= heavy / 400 <= 0.78
    for lease in leases:
        lease.release()


def test_releasing_every_lease_restores_the_counts_even_when_requests_fail(
    make_picker: PickerFactory,
) -> None:
    """In-flight counts go back to zero after every request, including those that raised inside their
    lease, and `started` counts each request once."""
    clock = FakeClock()
    backends = _backends(3)
    _sample_all(backends, clock)
    picker = make_picker(clock)

    def request(number: int) -> None:
        with picker.pick(backends):
            if number % 2:
                raise ConnectionError("the backend went away")

    for number in range(20):
        with contextlib.suppress(ConnectionError):
            request(number)
    assert [b.in_flight for b in backends] == [0, 0, 0]
    assert sum(b.started for b in backends) == 20


def test_an_empty_candidate_list_is_an_error_that_counts_nothing(make_picker: PickerFactory) -> None:
    """Picking from no candidates raises a clear error (the pool decides what to do instead)."""
    picker = make_picker(FakeClock())
    with pytest.raises(ValueError, match="cannot be picked from an empty list"):
        picker.pick([])


# --- Round robin --------------------------------------------------------------------------------------


def test_round_robin_interleaves_weighted_backends_smoothly() -> None:
    """Weights 5, 1, 1 give a a b a c a a: the heavy backend's turns are spread, not in a run."""
    backends = _backends(3, weights=[5, 1, 1])
    picker = RoundRobin()
    names = "abc"
    order = ""
    for _ in range(14):
        with picker.pick(backends) as lease:
            order += names[backends.index(lease.backend)]
    assert order == "aabacaa" * 2


def test_round_robin_ignores_load_and_affinity() -> None:
    """Round robin goes on rotating whatever is in flight and whatever affinity key is given."""
    backends = _backends(2)
    picker = RoundRobin()
    busy = [Lease(backends[0]) for _ in range(5)]
    picked = [picker.pick(backends, "same prompt").backend for _ in range(4)]
    assert picked == [backends[0], backends[1], backends[0], backends[1]]
    for lease in busy:
        lease.release()


# --- Least outstanding --------------------------------------------------------------------------------


def test_least_outstanding_sends_to_the_backend_with_fewest_requests_in_flight() -> None:
    """A backend holding long streams gets no new request until the others hold as many."""
    backends = _backends(3)
    streams = [Lease(backends[0]) for _ in range(3)]
    picker = LeastOutstanding()
    picked = [picker.pick(backends) for _ in range(6)]
    assert Counter(lease.backend.url for lease in picked) == {backends[1].url: 3, backends[2].url: 3}
    for lease in [*streams, *picked]:
        lease.release()


# --- Queue aware --------------------------------------------------------------------------------------


def test_queue_aware_prefers_the_backend_whose_server_reports_less_work() -> None:
    """The server's own queue counts, including requests from other replicas this one never sees; a
    queued request weighs more than a running one, and a full KV cache counts too."""
    clock = FakeClock()
    backends = _backends(3)
    picker = QueueAware(stale_after=STALE_AFTER, waiting_cost=4, kv_cost=10, clock=clock)
    loads = [LoadSample(waiting=2, running=2), LoadSample(waiting=0, running=9), LoadSample(0, 4, 0.9)]
    for backend, load in zip(backends, loads, strict=True):
        backend.record_load(load, at=clock.now, started_before=0)
    # Scores: 1 + 2 + 4 * 2 = 11, 1 + 9 = 10, 1 + 4 + 10 * 0.9 = 14.
    assert picker.scores(backends) == pytest.approx([11, 10, 14])
    assert picker.pick(backends).backend is backends[1]


def test_queue_aware_counts_requests_sent_since_the_sample_so_a_burst_spreads() -> None:
    """Between two scrapes, requests this replica sent (and still holds) add to a backend's score, so a
    burst does not all go to the backend that looked idlest; requests already in the sample are not
    counted twice."""
    clock = FakeClock()
    idle, busy = _backends(2)
    in_sample = Lease(idle)  # sent before the scrape: the server reports it as running
    idle.record_load(LoadSample(waiting=0, running=1), at=clock.now, started_before=idle.started)
    busy.record_load(LoadSample(waiting=0, running=5), at=clock.now, started_before=busy.started)
    picker = QueueAware(stale_after=STALE_AFTER, clock=clock)
    burst = [picker.pick([idle, busy]) for _ in range(10)]
    assert Counter(lease.backend for lease in burst) == {idle: 7, busy: 3}
    assert picker.scores([idle, busy]) == pytest.approx([1 + 1 + 7, 1 + 5 + 3])
    for lease in [in_sample, *burst]:
        lease.release()


def test_queue_aware_falls_back_to_least_outstanding_when_any_sample_is_stale_or_missing() -> None:
    """A sample older than `stale_after`, or none at all, makes the whole pick least-outstanding: a
    backend whose metrics cannot be read must not look idle."""
    clock = FakeClock()
    backends = _backends(2)
    picker = QueueAware(stale_after=STALE_AFTER, clock=clock)
    backends[0].record_load(LoadSample(waiting=50, running=50), at=clock.now, started_before=0)
    held = Lease(backends[1])
    fallback = picker.pick(backends)
    assert fallback.backend is backends[0], "no sample for vllm-1: fewest in flight wins"
    assert picker.stale_picks == 1

    backends[1].record_load(LoadSample(waiting=0, running=0), at=clock.now, started_before=1)
    assert picker.scores(backends) == pytest.approx([1 + 50 + 1 + 4 * 50, 1])
    clock.advance(STALE_AFTER + 0.001)
    assert picker.scores(backends) == pytest.approx([2, 2]), "both stale: in-flight counts only"
    assert picker.stale_picks == 2
    held.release()
    fallback.release()


# --- Prefix affinity ----------------------------------------------------------------------------------


def test_an_affinity_key_always_goes_to_the_same_backend_while_loads_are_close() -> None:
    """The same key picks the same backend every time, whatever order the candidates come in and
    whatever other keys do meanwhile."""
    backends = _backends(4)
    picker = LeastOutstanding(affinity_margin=2)
    with picker.pick(backends, "system: you are a pirate") as home:
        first = home.backend
    for round_ in range(20):
        with picker.pick(backends, f"another prompt {round_}"):
            pass
        order = backends[round_ % 4 :] + backends[: round_ % 4]
        with picker.pick(order, "system: you are a pirate") as lease:
            assert lease.backend is first
    assert picker.affinity_kept == 41


def test_affinity_keys_spread_over_backends_in_proportion_to_their_weights() -> None:
    """Many distinct keys split over the backends by weight (2:1:1 here, within a few percent)."""
    backends = _backends(3, weights=[2, 1, 1])
    shares = Counter(
        backends[rendezvous_index(affinity_hash(f"prompt {n}"), backends)].url for n in range(4000)
    )
    assert 0.46 <= shares[backends[0].url] / 4000 <= 0.54
    assert 0.21 <= shares[backends[1].url] / 4000 <= 0.29


def test_affinity_gives_way_when_its_backend_is_clearly_busier_than_the_best() -> None:
    """While the key's backend is at most `affinity_margin` above the least loaded it keeps the key;
    beyond that the request goes to the least loaded, and the override is counted."""
    backends = _backends(2)
    picker = LeastOutstanding(affinity_margin=2)
    key = "system: summarize legal documents"
    home = picker.pick(backends, key)
    home.release()
    preferred = home.backend
    held = [Lease(preferred), Lease(preferred)]
    kept = picker.pick(backends, key)
    assert kept.backend is preferred  # scores 2 + 1 against 0 + 1: within the margin of 2
    away = picker.pick(backends, key)
    assert away.backend is not preferred  # 3 + 1 against 0 + 1: clearly busier
    assert picker.affinity_overridden == 1
    for lease in [*held, kept, away]:
        lease.release()


def test_when_a_backend_leaves_only_its_keys_move() -> None:
    """Keys whose backend is still a candidate stay where they were when another backend drops out."""
    backends = _backends(4)
    keys = [f"prompt {n}" for n in range(500)]
    before = {key: backends[rendezvous_index(affinity_hash(key), backends)] for key in keys}
    remaining = backends[:2] + backends[3:]
    after = {key: remaining[rendezvous_index(affinity_hash(key), remaining)] for key in keys}
    moved = {key for key in keys if before[key] is not after[key]}
    assert moved == {key for key in keys if before[key] is backends[2]}


def test_affinity_maps_a_key_to_the_same_backend_in_every_process() -> None:
    """The mapping does not depend on Python's per-process string hashing, so every replica and worker
    sends a prompt to the same backend's prefix cache."""
    script = (
        "from maas_gateway.balancing import BackendState\n"
        "from maas_gateway.balancing.affinity import affinity_hash, rendezvous_index\n"
        "backends = [BackendState(f'http://vllm-{n}:8000') for n in range(8)]\n"
        "print([rendezvous_index(affinity_hash(f'prompt {k}'), backends) for k in range(50)])\n"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    backends = [BackendState(f"http://vllm-{n}:8000") for n in range(8)]
    here = str([rendezvous_index(affinity_hash(f"prompt {k}"), backends) for k in range(50)])
    assert runs == {here + "\n"}


def test_remembered_affinity_scores_give_the_same_backend_as_computing_them_and_stay_bounded() -> None:
    """The picker's memory of recent keys changes no answer, whichever candidates a pick has, and holds
    at most `max_keys` keys."""
    backends = _backends(5, weights=[1, 2, 1, 1, 3])
    remembered = AffinityScores(max_keys=50)
    for round_ in range(3):
        for n in range(200):
            key = f"prompt {n % 70}"
            candidates = [b for index, b in enumerate(backends) if (index + n + round_) % 4 != 0]
            expected = rendezvous_index(affinity_hash(key), candidates)
            assert remembered.preferred(key, candidates) == expected
    assert len(remembered) == 50


@pytest.mark.parametrize("margin", [-1.0, float("nan")])
def test_a_negative_affinity_margin_is_refused(margin: float) -> None:
    """The margin is a number of requests, zero or more."""
    with pytest.raises(ValueError, match="affinity margin must be zero or more"):
        LeastOutstanding(affinity_margin=margin)
