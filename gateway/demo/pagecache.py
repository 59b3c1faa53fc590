"""The demo's page cache: a store whose page keys carry the drill generation.

A page cached before an outage drill must not be served after it (the console would show
cell2 up for ``page_cache_ttl_s`` after its Down button). Rather than a demo term in every
listing's cache key, the demo wraps its store: a rendered page is kept under its key plus
the generation of :class:`~gateway.demo.drills.Drills`, which every drill bumps, so pages
kept before a drill are simply never asked for again and expire. Everything else passes
through untouched; frontiers above all: a walk's next page must still resolve its marker
from the cache while the marker's cell is down.

The generation is read when the store is called, so a listing already rendering when a
drill starts may be kept under the new generation (or shared with a request that joins its
flight): the window is one page's render, as with any page computed just before an outage.
"""

from __future__ import annotations

from cache import Store, page_key
from gateway.demo.drills import Drills

__all__ = ["DrilledStore"]

_PROBE = "\x00"  # a fingerprint no real one contains: where page_key puts it


class DrilledStore:
    """``store`` (a :class:`cache.Store`) with the page keys of ``prefix`` versioned by
    ``drills.generation``; every other key is unchanged."""

    def __init__(self, store: Store, drills: Drills, prefix: str) -> None:
        self._store = store
        self._drills = drills
        sample = page_key(prefix, _PROBE)
        self._pages = sample[: sample.index(_PROBE)]  # what every page key starts with
        self.stats = store.stats

    def _key(self, key: str) -> str:
        if key.startswith(self._pages):
            return f"{key}:drills:{self._drills.generation}"
        return key

    async def get(self, key: str, slide_s: float | None = None) -> bytes | None:
        """The value under ``key`` (a page's: the current generation's)."""
        return await self._store.get(self._key(key), slide_s)

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store ``value`` under ``key`` (a page's: the current generation's)."""
        await self._store.set(self._key(key), value, ttl_s)

    async def close(self) -> None:
        """Close the wrapped store."""
        await self._store.close()
