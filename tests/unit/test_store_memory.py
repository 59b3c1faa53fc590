"""The in-process store: TTL, sliding TTL on reads, the size bound (least recently used
goes first), and its stats."""

from __future__ import annotations

import pytest

from cache import memory as memory_module
from cache.memory import MemoryStore


class Clock:
    """A manual ``time.monotonic``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(memory_module.time, "monotonic", fake)
    return fake


async def test_get_returns_what_set_stored(clock: Clock) -> None:
    store = MemoryStore()
    await store.set("k", b"v", 10)
    assert await store.get("k", 10) == b"v"
    assert await store.get("other", 10) is None
    assert (store.stats.hits, store.stats.misses, store.stats.writes) == (1, 1, 1)


async def test_entry_expires_after_its_ttl(clock: Clock) -> None:
    store = MemoryStore()
    await store.set("k", b"v", 10)
    clock.now += 9.9
    assert await store.get("k", 0.05) == b"v"  # the read slides the TTL to 0.05 s
    clock.now += 0.1
    assert await store.get("k", 10) is None
    assert "k" not in store._data  # an expired entry is dropped on read


async def test_ttl_is_not_refreshed_without_reads(clock: Clock) -> None:
    store = MemoryStore()
    await store.set("k", b"v", 10)
    clock.now += 10.01
    assert await store.get("k", 10) is None


async def test_reads_without_a_slide_keep_the_expiry_absolute(clock: Clock) -> None:
    # The page cache: polled every 0.5 s, a 2 s entry still expires 2 s after its write.
    store = MemoryStore()
    await store.set("k", b"v", 2)
    for _ in range(3):
        clock.now += 0.5
        assert await store.get("k") == b"v"
    clock.now += 0.51
    assert await store.get("k") is None


async def test_reads_slide_the_ttl(clock: Clock) -> None:
    store = MemoryStore()
    await store.set("k", b"v", 10)
    for _ in range(5):  # 40 s in all, far past the first TTL, but read every 8 s
        clock.now += 8
        assert await store.get("k", 10) == b"v"
    clock.now += 10.01
    assert await store.get("k", 10) is None


async def test_set_overwrites_value_and_ttl(clock: Clock) -> None:
    store = MemoryStore()
    await store.set("k", b"old", 100)
    await store.set("k", b"new", 1)
    assert await store.get("k", 1) == b"new"
    clock.now += 1.5
    assert await store.get("k", 1) is None


async def test_bound_evicts_the_least_recently_used(clock: Clock) -> None:
    store = MemoryStore(max_entries=3)
    for key in ("a", "b", "c"):
        await store.set(key, key.encode(), 60)
    assert await store.get("a", 60) == b"a"  # "a" is now the most recently used
    await store.set("d", b"d", 60)
    assert len(store._data) == 3
    assert await store.get("b", 60) is None  # the oldest untouched entry went
    assert [await store.get(k, 60) for k in ("a", "c", "d")] == [b"a", b"c", b"d"]


async def test_bound_holds_under_many_writes(clock: Clock) -> None:
    store = MemoryStore(max_entries=100)
    for i in range(1000):
        await store.set(f"k{i}", b"x", 60)
    assert len(store._data) == 100
    assert await store.get("k899", 60) is None
    assert await store.get("k900", 60) == b"x"
    assert await store.get("k999", 60) == b"x"


async def test_close_forgets_everything(clock: Clock) -> None:
    store = MemoryStore()
    await store.set("k", b"v", 60)
    await store.close()
    assert await store.get("k", 60) is None


async def test_byte_bound_evicts_the_least_recently_used(clock: Clock) -> None:
    store = MemoryStore(max_bytes=250)
    for key in ("a", "b", "c"):
        await store.set(key, b"x" * 100, 60)  # the third one overflows: "a" goes
    assert store.size_bytes == 200
    assert await store.get("a", 60) is None
    assert await store.get("b", 60) == b"x" * 100
    await store.set("b", b"y" * 10, 60)  # a replaced value counts once, at its new size
    assert store.size_bytes == 110
    await store.set("big", b"z" * 300, 60)  # larger than the bound: nothing else stays
    assert store.size_bytes <= 250


async def test_expired_values_at_the_old_end_go_on_the_next_write(clock: Clock) -> None:
    store = MemoryStore()
    for i in range(100):
        await store.set(f"page{i}", b"p" * 1000, 2)  # page cache entries
    clock.now += 3
    await store.set("frontier", b"f", 300)
    assert len(store._data) == 1
    assert store.size_bytes == 1
    assert await store.get("frontier", 300) == b"f"
