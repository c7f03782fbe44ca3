"""The line of one model in one process, and its drain rate: pure units, no event loop, no clock but a
hand-set one."""

from __future__ import annotations

from maas_gateway.capacity.drain import DrainRate
from maas_gateway.capacity.queue import FairQueue
from tests.support.clock import FakeClock


def _serve_all(queue: FairQueue[str]) -> list[str]:
    order = []
    while len(queue):
        first = queue.candidates()[0]
        queue.served(first)
        order.append(first)
    return order


def test_better_ranks_come_first_whatever_the_order_of_arrival() -> None:
    """Ranks are served in order (0 first); within a rank, first come first served for one user."""
    queue: FairQueue[str] = FairQueue()
    for item, rank in (("free-1", 2), ("premium-1", 1), ("free-2", 2), ("enterprise-1", 0)):
        queue.push(item, rank, user=item.split("-")[0])
    assert _serve_all(queue) == ["enterprise-1", "premium-1", "free-1", "free-2"]


def test_users_of_one_rank_take_turns() -> None:
    """User A's 50 waiting requests take one turn each round: user B's one request, come last, is the
    second served; a served user goes to the back of the turns."""
    queue: FairQueue[str] = FairQueue()
    for number in range(50):
        queue.push(f"a{number}", 1, "a")
    queue.push("b0", 1, "b")
    order = _serve_all(queue)
    assert order[:3] == ["a0", "b0", "a1"]
    assert order[3:] == [f"a{n}" for n in range(2, 50)]


def test_a_user_taken_out_without_service_keeps_their_turn() -> None:
    """A request that gives up leaves its user's place in the turns where it was."""
    queue: FairQueue[str] = FairQueue()
    for item, user in (("a0", "a"), ("a1", "a"), ("b0", "b"), ("c0", "c")):
        queue.push(item, 0, user)
    assert queue.remove("a0")
    assert not queue.remove("a0")
    assert queue.candidates() == ["a1", "b0", "c0"]
    assert "a0" not in queue
    assert "a1" in queue


def test_a_full_line_makes_room_for_a_better_rank_or_a_lighter_user() -> None:
    """The victim is the newest request of the heaviest user in the worst rank: for any newcomer of a
    better rank, and for one of the same rank whose user has fewer waiting; otherwise nobody."""
    queue: FairQueue[str] = FairQueue()
    for number in range(3):
        queue.push(f"a{number}", 2, "a")
    queue.push("b0", 2, "b")
    queue.push("p0", 1, "p")
    assert queue.victim(0, "e") == "a2"
    assert queue.victim(2, "c") == "a2"
    assert queue.victim(2, "b") == "a2", "b would have 2, a has 3"
    assert queue.victim(2, "a") is None, "a is already the heaviest"
    assert queue.victim(3, "x") is None, "a worse rank never displaces anyone"
    assert queue.depth() == {2: 4, 1: 1}
    assert queue.waiting_at_or_above(1)
    assert not queue.waiting_at_or_above(0)


def test_the_drain_rate_counts_recent_releases_and_the_time_slots_are_held() -> None:
    """Releases of the last window make the rate; Retry-After is (ahead + 1) / rate, whole seconds from
    1 to 60; with no release yet it is the fallback; the mean hold time answers a user's own wait."""
    clock = FakeClock(100.0)
    drain = DrainRate(window=10.0, clock=clock)
    assert drain.retry_after(ahead=5, fallback=7.0) == 7
    assert drain.hold_retry_after(fallback=3.0) == 3
    clock.advance(10.0)
    for _ in range(20):
        drain.released(held_for=2.0)
    assert drain.per_second() == 2.0
    assert drain.retry_after(ahead=5, fallback=7.0) == 3
    assert drain.retry_after(ahead=0, fallback=7.0) == 1
    assert drain.retry_after(ahead=10_000, fallback=7.0) == 60
    drain.released(held_for=12.0)
    assert drain.hold_retry_after(fallback=3.0) == 4  # 2 + 0.2 * (12 - 2)
    clock.advance(10.5)
    assert drain.per_second() == 0.0


def test_the_next_request_passes_over_users_and_ranks_that_cannot_take_a_slot() -> None:
    """`next` is the first request in line order, leaving out the users whose own allowance is in use
    and the ranks whose tier share is; a user served moves to the back, so the next is another's."""
    queue: FairQueue[str] = FairQueue()
    for item, rank, user in (("e0", 0, "boss"), ("e1", 0, "boss"), ("p0", 1, "p"), ("f0", 2, "f")):
        queue.push(item, rank, user)
    assert queue.next() == "e0"
    queue.served("e0")
    assert queue.next() == "e1", "one user alone in a rank is next again"
    assert queue.next(skip_users={"boss"}) == "p0"
    assert queue.next(skip_users={"boss"}, skip_ranks={1}) == "f0"
    assert queue.next(skip_users={"boss", "f"}, skip_ranks={1}) is None
