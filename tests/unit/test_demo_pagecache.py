"""The demo's page cache: a drill hides the pages kept before it, never a frontier."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import create_async_engine

from cache import MemoryStore, frontier_key, page_key
from gateway.demo.drills import Drills
from gateway.demo.pagecache import DrilledStore

PREFIX = "cellgate"


async def test_a_drill_hides_pages_kept_before_it_but_not_frontiers() -> None:
    drills = Drills(slow_s=0.1)
    drills.install("cell1", create_async_engine("sqlite+aiosqlite://"))  # never connects
    store = DrilledStore(MemoryStore(), drills, PREFIX)
    page, frontier = page_key(PREFIX, "fp"), frontier_key(PREFIX, "fp", "uuid")
    await store.set(page, b"page", 60)
    await store.set(frontier, b"frontier", 60)
    assert await store.get(page) == b"page"

    drills.set("cell1", "down")
    assert await store.get(page) is None
    assert await store.get(frontier, 60) == b"frontier"
    await store.set(page, b"after", 60)
    assert await store.get(page) == b"after"
    assert store.stats.writes == 3  # the wrapped store's own counters
