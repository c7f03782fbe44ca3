"""One contract for the stored-response owner stores, run against memory, a real Redis and a Redis
Cluster node: what is remembered is found, other ids are not, forgetting forgets, a later write wins."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator

import pytest

from maas_gateway.proxy.redis_response_owners import RedisResponseOwners
from maas_gateway.proxy.response_owners import MemoryResponseOwners, ResponseOwner, ResponseOwners
from tests.support.redis_server import STORAGE_KINDS, storage_url_of

Contract = Callable[[ResponseOwners], Awaitable[None]]
ALICE = ResponseOwner("alice", "model-a", "http://10.0.0.1:8000")
BOB = ResponseOwner("team:bob", "model-b", "http://user:pw@[fd00::5]:8443/v")


@pytest.fixture(scope="module", params=STORAGE_KINDS)
def store_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server per kind for the module; each test keeps to keys of its own (a fresh prefix)."""
    yield from storage_url_of(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture
def run(store_url: str) -> Callable[[Contract], None]:
    def runner(contract: Contract) -> None:
        async def main() -> None:
            store: ResponseOwners
            if store_url:
                store = RedisResponseOwners(store_url, timeout=2.0, prefix=f"test:{uuid.uuid4().hex}:")
            else:
                store = MemoryResponseOwners()
            try:
                await contract(store)
            finally:
                await store.aclose()

        asyncio.run(main())

    return runner


def test_remembered_owner_is_found_and_others_are_not(run: Callable[[Contract], None]) -> None:
    """An id remembered is found with its owner as written (names with `:`, URLs with credentials);
    an id never remembered is not."""

    async def contract(store: ResponseOwners) -> None:
        await store.remember("resp_1", ALICE)
        await store.remember("resp_2", BOB)
        assert await store.find("resp_1") == ALICE
        assert await store.find("resp_2") == BOB
        assert await store.find("resp_3") is None
        assert await store.find("") is None

    run(contract)


def test_forget_and_overwrite(run: Callable[[Contract], None]) -> None:
    """Forgetting an id forgets it (twice is harmless); remembering an id again replaces its owner."""

    async def contract(store: ResponseOwners) -> None:
        await store.remember("resp_1", ALICE)
        await store.forget("resp_1")
        await store.forget("resp_1")
        assert await store.find("resp_1") is None
        await store.remember("resp_2", ALICE)
        await store.remember("resp_2", BOB)
        assert await store.find("resp_2") == BOB

    run(contract)


def test_ids_are_data_not_syntax(run: Callable[[Contract], None]) -> None:
    """Ids with spaces, wildcards, separators and non-ASCII characters are just keys."""

    async def contract(store: ResponseOwners) -> None:
        odd = ["resp *", "resp:{x}", "rési", "a\nb"]
        for index, ident in enumerate(odd):
            await store.remember(ident, ResponseOwner(f"u{index}", "m", "http://b"))
        for index, ident in enumerate(odd):
            found = await store.find(ident)
            assert found is not None
            assert found.user == f"u{index}"
        assert await store.find("resp ") is None

    run(contract)


def test_memory_store_forgets_the_oldest_beyond_its_capacity() -> None:
    """The in-process store is bounded: past its capacity the oldest ids go first."""

    async def contract() -> None:
        store = MemoryResponseOwners(capacity=2)
        for ident in ("a", "b", "c"):
            await store.remember(ident, ALICE)
        assert await store.find("a") is None
        assert await store.find("c") == ALICE

    asyncio.run(contract())
