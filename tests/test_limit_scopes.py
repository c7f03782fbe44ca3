"""Limits on several scopes at once (user, team, key, tier, model-wide) over every ``LimitStorage`` (in
process, real Redis, Redis Cluster), against a reference recount of the admitted requests.

Every limit that applies must hold; the first that does not is the one the 429 names; admission over all
scopes is one atomic step, so two replicas racing never pass a team's limit together.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maas_gateway.application.policies import rule_book
from maas_gateway.auth.keys import key_id_for
from maas_gateway.config import TierConfig
from maas_gateway.config.schema import GatewayConfig, TeamConfig
from maas_gateway.errors import RateLimitError
from maas_gateway.limits import InMemoryLimitStorage, Limiter, LimitStorage, TokenCharge, rate_limit_headers
from maas_gateway.limits.redis_storage import RedisLimitStorage
from tests.support.clock import FakeClock
from tests.support.redis_server import STORAGE_KINDS, storage_url_of


@pytest.fixture(scope="module", params=STORAGE_KINDS)
def storage_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server per kind for the module; every example counts for users, a team and a tier of its own."""
    yield from storage_url_of(request.param, tmp_path_factory.mktemp(request.param))


def _storage(url: str) -> LimitStorage:
    # A cluster keeps every counter in one slot once limits count beyond a user (as the gateway does).
    one_slot = url.startswith("redis+cluster://")
    return RedisLimitStorage(url, timeout=2.0, one_slot=one_slot) if url else InMemoryLimitStorage()


def _utc(year: int, month: int, day: int, hour: int = 0) -> float:
    return datetime(year, month, day, hour, tzinfo=UTC).timestamp()


# Starts just before calendar boundaries: a month end, Feb 29, DST changes.
EDGES = [
    ("UTC", _utc(2028, 2, 28, 20)),
    ("UTC", _utc(2026, 12, 31, 22)),
    ("Europe/Berlin", _utc(2026, 3, 28, 20)),
    ("America/New_York", _utc(2026, 11, 1, 2)),
]
advances = st.one_of(
    st.sampled_from([0.0, 1.0, 3599.0, 3600.0, 21600.0, 86399.0, 86400.0]),
    st.floats(min_value=0, max_value=40_000, allow_nan=False),
)


def _period(t: float, window: str, zone: ZoneInfo) -> object:
    """The reference window of ``t``: its hour since the epoch, or its local day, ISO week or month."""
    if window == "1h":
        return int(t // 3600)
    local = datetime.fromtimestamp(t, zone).date()
    if window == "day":
        return local
    if window == "week":
        return local.isocalendar()[:2]
    return (local.year, local.month)


# (limit, window, scope) of each rule, in the order the limiter checks them.
USER_RULE = (3, "day", "user")
TIER_RULE = (8, "week", "tier")
TEAM_RULE = (5, "month", "team")
MODEL_RULE = (6, "1h", "global")  # on model "m2" only: model-wide


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(EDGES),
    st.lists(
        st.tuples(advances, st.sampled_from(["alice", "bob", "carol"]), st.sampled_from(["m1", "m2"])),
        max_size=40,
    ),
)
def test_overlapping_scopes_match_a_recount(
    storage_url: str, edge: tuple[str, float], steps: Sequence[tuple[float, str, str]]
) -> None:
    """alice and bob are in one team, carol in none; each user may make 3 requests a local day, the
    tier's users 8 a week together, the team 5 a month, everyone 6 an hour on model m2. Each request
    is admitted exactly when a recount of the admitted ones says every rule that applies has room, and
    a refusal names the first rule that has none (the team's says so)."""
    zone_name, start = edge
    zone = ZoneInfo(zone_name)
    clock = FakeClock(start)
    run = uuid.uuid4().hex[:12]  # counters on a shared server are this example's own
    tier_name, team = f"tier-{run}", f"team-{run}"
    tier = TierConfig.model_validate(
        {
            "limits": [
                {"limit": USER_RULE[0], "unit": "requests", "window": USER_RULE[1]},
                {"limit": TIER_RULE[0], "unit": "requests", "window": TIER_RULE[1], "scope": "tier"},
                {
                    "limit": MODEL_RULE[0],
                    "unit": "requests",
                    "window": "1h",
                    "scope": "global",
                    "model": f"m2-{run}",
                },
            ]
        }
    )
    teams = {
        team: TeamConfig.model_validate({"limits": [{"limit": 5, "unit": "requests", "window": "month"}]})
    }
    book = rule_book({tier_name: tier}, {}, timezone=zone_name, teams=teams)
    membership = {"alice": team, "bob": team, "carol": None}
    admitted: list[tuple[float, str, str]] = []  # when, who, model

    def room(now: float, who: str, model: str) -> str | None:
        """The first rule without room for this request, by the recount, or None."""

        def used(window: str, same: Callable[[str, str], bool]) -> int:
            return sum(
                1
                for t, w, m in admitted
                if same(w, m) and _period(t, window, zone) == _period(now, window, zone)
            )

        checks = [
            ("user", used("day", lambda w, m: w == who) < USER_RULE[0]),
            ("tier", used("week", lambda w, m: True) < TIER_RULE[0]),
        ]
        if model == "m2":
            checks.append(("global", used("1h", lambda w, m: m == "m2") < MODEL_RULE[0]))
        if membership[who]:
            checks.append(("team", used("month", lambda w, m: membership[w] == team) < TEAM_RULE[0]))
        return next((name for name, fits in checks if not fits), None)

    async def scenario() -> None:
        storage = _storage(storage_url)
        limiter = Limiter(storage, book, clock)
        try:
            for advance, who, model in steps:
                clock.advance(advance)
                binding = room(clock.now, who, model)
                model_name = f"{model}-{run}"
                message = None
                try:
                    await limiter.admit(f"{who}-{run}", tier_name, model_name, team=membership[who])
                except RateLimitError as refused:
                    message = refused.message
                if message is not None:
                    assert binding is not None
                    assert (f"of the team '{team}'" in message) == (binding == "team")
                    continue
                assert binding is None
                admitted.append((clock.now, who, model))
        finally:
            await storage.aclose()

    asyncio.run(scenario())


def test_two_replicas_never_pass_a_team_limit_together(storage_url: str) -> None:
    """Two limiters (two replicas) on one storage, two users of a team each sending 20 requests at once:
    exactly the team's 10 are admitted, whoever sent them."""
    run = uuid.uuid4().hex[:12]
    team = f"team-{run}"
    tier = TierConfig.model_validate({"limits": [{"limit": 100, "unit": "requests", "window": "1h"}]})
    teams = {
        team: TeamConfig.model_validate({"limits": [{"limit": 10, "unit": "requests", "window": "day"}]})
    }
    book = rule_book({"t": tier}, {}, teams=teams)

    async def scenario() -> int:
        # In process, the replicas share one storage (as they share one Redis).
        shared = _storage(storage_url)
        storages = [shared, _storage(storage_url) if storage_url else shared]
        replicas = [Limiter(storage, book, FakeClock(1_800_000_000.0)) for storage in storages]

        async def one(replica: Limiter, user: str) -> bool:
            try:
                await replica.admit(user, "t", "m", team=team)
            except RateLimitError:
                return False
            return True

        try:
            calls = [one(replicas[i % 2], f"{('alice', 'bob')[i % 2]}-{run}") for i in range(40)]
            return sum(await asyncio.gather(*calls))
        finally:
            for storage in set(storages):
                await storage.aclose()

    assert asyncio.run(scenario()) == 10


def test_a_keys_own_limit_and_the_binding_limit_in_the_headers() -> None:
    """A configuration key with a limit of its own: after its 2 requests it is refused, naming the key,
    while its user's tier has room; the headers report the window with the fewest requests left (the
    key's), which is the one that binds."""
    config = GatewayConfig.model_validate(
        {
            "models": [{"name": "m", "backends": ["http://b"]}],
            "tiers": {"free": {"limits": [{"limit": 50, "unit": "requests", "window": "1h"}]}},
            "api_keys": [
                {
                    "user": "dana",
                    "tier": "free",
                    "key": "dana-key-123",
                    "limits": [{"limit": 2, "unit": "requests", "window": "day"}],
                }
            ],
        }
    )
    book = rule_book(config.tiers, config.users, keys=config.api_keys)
    key_id = key_id_for(config.api_keys[0].digest)
    limiter = Limiter(InMemoryLimitStorage(), book, FakeClock(1_800_000_000.0))

    async def scenario() -> None:
        first = await limiter.admit("dana", "free", "m", key_id=key_id)
        headers = dict(rate_limit_headers(first.counters, first.values, consumed=TokenCharge(0, 0)))
        assert (headers["x-ratelimit-limit-requests"], headers["x-ratelimit-remaining-requests"]) == (
            "2",
            "1",
        )
        await limiter.admit("dana", "free", "m", key_id=key_id)
        with pytest.raises(RateLimitError) as refused:
            await limiter.admit("dana", "free", "m", key_id=key_id)
        assert f"Request limit of the key '{key_id}' reached for user 'dana'" in refused.value.message
        assert "2 requests per 1d" in refused.value.message or "2 requests per day" in refused.value.message
        await limiter.admit("dana", "free", "m", key_id="another-key")  # the user's other keys go on

    asyncio.run(scenario())


def test_scopes_are_validated() -> None:
    """A team's or a key's limits count the team or the key: giving them another scope is an error."""
    with pytest.raises(ValueError, match="leave out `scope`"):
        TeamConfig.model_validate(
            {"limits": [{"limit": 1, "unit": "requests", "window": "1h", "scope": "tier"}]}
        )
    with pytest.raises(ValueError, match="leave out `scope`"):
        GatewayConfig.model_validate(
            {
                "models": [{"name": "m", "backends": ["http://b"]}],
                "tiers": {"free": {}},
                "api_keys": [
                    {
                        "user": "d",
                        "tier": "free",
                        "key": "dana-key-123",
                        "limits": [{"limit": 1, "unit": "requests", "window": "1h", "scope": "global"}],
                    }
                ],
            }
        )
