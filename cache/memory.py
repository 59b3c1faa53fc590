"""The in-process store (embedded demo, no Redis configured): bounded in entries and
bytes, least recently used out first, a TTL per entry."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from cachetools import TLRUCache

from cache.store import StoreStats

__all__ = ["MemoryStore"]

_Entry = tuple[bytes, float]  # the value and its time to live (from the write, or the slide)


def _expiry(key: str, entry: _Entry, now: float) -> float:
    return now + entry[1]


def _size(entry: _Entry) -> int:
    return len(entry[0])


def _monotonic() -> float:
    # Looked up at each call, not bound once: the unit tests patch ``time.monotonic``.
    return time.monotonic()


@dataclass(slots=True)
class MemoryStore:
    """A bounded in-process store (embedded demo, no Redis configured): at most
    ``max_entries`` values of at most ``max_bytes`` in all, the least recently used going
    first; expired values are never returned, and go at the next write.

    The byte bound is what holds memory: pages are ~100-200 KB each, and with only a count
    bound 10,000 cached pages (every walk page has its own key) grew a soak's gateway past
    400 MiB in a minute, expired pages staying until their key was read again.

    A cachetools ``TLRUCache`` (per-entry expiry, least recently used out first, sized in
    bytes by ``getsizeof``) holds the values; cachetools has one size bound per cache, so
    the entry bound is applied after each write. Not thread-safe, as cachetools' caches are
    not: one event loop uses it.
    """

    max_entries: int = 10_000
    max_bytes: int = 64 * 2**20
    stats: StoreStats = field(default_factory=StoreStats)
    _data: TLRUCache[str, _Entry] = field(init=False)

    def __post_init__(self) -> None:
        self._data = TLRUCache(self.max_bytes, _expiry, _monotonic, _size)

    @property
    def size_bytes(self) -> int:
        """The bytes of the values held."""
        return int(self._data.currsize)

    async def get(self, key: str, slide_s: float | None = None) -> bytes | None:
        entry = self._data.get(key)  # the most recently used now
        if entry is None:
            self._data.expire()  # an expired entry is dropped on read
            self.stats.misses += 1
            return None
        if slide_s is not None:
            self._data[key] = (entry[0], slide_s)
        self.stats.hits += 1
        return entry[0]

    async def read_shared(self, keys: list[str]) -> list[bytes | None] | None:
        """The values of ``keys`` (``None`` where absent), in order (see
        :meth:`~cache.redisstore.RedisStore.read_shared`; uncounted in :attr:`stats`)."""
        entries = [self._data.get(key) for key in keys]
        return [e[0] if e is not None else None for e in entries]

    async def write_shared(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store ``value`` for ``ttl_s`` (see :meth:`~cache.redisstore.RedisStore.write_shared`)."""
        writes = self.stats.writes
        await self.set(key, value, ttl_s)
        self.stats.writes = writes

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        # The old value goes first: it must not make room for itself by evicting others.
        self._data.pop(key, None)
        try:
            self._data[key] = (value, ttl_s)
        except ValueError:  # larger than max_bytes on its own: it stays out, nor does the
            self._data.clear()  # rest (as the hand-written store did; pages are ~200 KB)
        while len(self._data) > self.max_entries:
            self._data.popitem()
        self.stats.writes += 1

    async def close(self) -> None:
        self._data.clear()
