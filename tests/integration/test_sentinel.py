"""Redis behind Sentinel (Debian's ``redis-sentinel``: a primary, a replica and three
Sentinels on loopback, ``scripts/redissentinel.py``): a walk through the gateway while the
primary fails over (``SENTINEL FAILOVER``, and a killed primary) gets exactly the pages of
a walk without Redis, and the store's breaker is closed afterwards, its frontiers on the
new primary. Both URL spellings: kolla's tooz-style one and ``redis+sentinel://``.

Under ``CI=true`` missing binaries fail the test (``apt-get install redis-sentinel`` is
tried first, as ``scripts/test`` does for chromium); elsewhere they skip it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from redissentinel import SentinelSet, binaries_missing, sentinel_set

from cache import CallResult, RedisStore, StoreOp
from cells import Breaker, BreakerState
from tests.support.apps import app_and_client, app_client
from tests.support.cellsets import CellSet

pytestmark = pytest.mark.integration

ADMIN = {"X-Auth-Token": "admin:admin"}
FIRST = "/v2.1/servers/detail?all_tenants=1&limit=150"


def _install() -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "redis-sentinel"]
    if subprocess.run(command, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        subprocess.run(command, env=env, capture_output=True, check=False)


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSet]:
    if binaries_missing() and os.environ.get("CI") == "true":
        _install()
    if missing := binaries_missing():
        message = f"{', '.join(missing)} not installed (apt-get install redis-sentinel)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with sentinel_set(tmp_path / "redis") as servers:
        yield servers


class Recorder:
    """Forwards the store's hooks and its breaker's moves, and keeps what they said."""

    def __init__(self, store: RedisStore) -> None:
        self.inner = store.hooks
        self.phases: list[BreakerState] = []
        self.results: list[CallResult] = []
        breaker = store.breaker
        assert isinstance(breaker, Breaker)
        moved = breaker.on_event

        def record() -> None:
            self.phases.append(breaker.state)
            if moved is not None:
                moved()

        breaker.on_event = record

    def call(self, op: StoreOp, result: CallResult) -> None:
        self.results.append(result)
        self.inner.call(op, result)


async def _page(client: httpx.AsyncClient, url: str) -> tuple[bytes, str | None]:
    response = await client.get(url, headers=ADMIN)
    assert response.status_code == 200, response.text
    links = response.json().get("servers_links") or []
    following = links[0]["href"].removeprefix("http://gateway.test") if links else None
    return response.content, following


async def _walk(client: httpx.AsyncClient) -> list[bytes]:
    pages: list[bytes] = []
    url: str | None = FIRST
    while url is not None:
        body, url = await _page(client, url)
        pages.append(body)
    return pages


@pytest.fixture(scope="module")
async def reference(pg_cells: CellSet) -> list[bytes]:
    """The walk without Redis (the in-process store)."""
    async with app_client(pg_cells.settings(page_cache_ttl_s=0)) as client:
        return await _walk(client)


@pytest.mark.parametrize(
    ("spelling", "failure"),
    [("tooz", "failover"), ("redis+sentinel", "failover"), ("tooz", "killed primary")],
)
async def test_a_walk_through_a_failover(
    pg_cells: CellSet,
    sentinels: SentinelSet,
    reference: list[bytes],
    spelling: str,
    failure: str,
) -> None:
    url = sentinels.tooz_url() if spelling == "tooz" else sentinels.sentinel_url()
    settings = pg_cells.settings(
        redis_url=url,
        page_cache_ttl_s=0,  # every page after the first resumes from a frontier in Redis
        redis_timeout_s=0.25,  # a loaded 2-core machine; the failover is what is tested
        redis_connect_timeout_s=0.25,
        redis_cooldown_s=1.0,
    )
    async with app_and_client(settings) as (app, client):
        store = app.state.cellgate.store
        assert isinstance(store, RedisStore)
        recorder = Recorder(store)
        store.hooks = recorder
        old = sentinels.primary_port()
        pages: list[bytes] = []
        url_next: str | None = FIRST
        for _ in range(5):  # a few pages before
            assert url_next is not None
            body, url_next = await _page(client, url_next)
            pages.append(body)
        hits_before = store.stats.hits
        assert hits_before > 0  # frontiers came from the primary
        ports: list[int] = []
        act = sentinels.failover if failure == "failover" else sentinels.kill_primary
        thread = threading.Thread(target=lambda: ports.append(act()))
        thread.start()
        while url_next is not None:  # the rest of the walk, spread over the failover
            body, url_next = await _page(client, url_next)
            pages.append(body)
            if thread.is_alive():
                await asyncio.sleep(0.4)
        await asyncio.to_thread(thread.join, 60)
        assert ports, "the failover did not complete"
        assert ports[0] != old
        assert pages == reference

        # After the cool-down the breaker closes on the new primary and serves frontiers.
        await asyncio.sleep(settings.redis_cooldown_s + 0.2)
        hits = store.stats.hits
        again = await _walk_pages(client, 4)
        assert again == reference[:4]
        assert not store.open
        assert recorder.results[-6:] == ["ok"] * 6
        assert store.stats.hits > hits
        if recorder.phases:
            assert recorder.phases[-1] == "closed"
        if failure == "killed primary":
            assert "open" in recorder.phases  # a crash costs errors until the promotion
        new = next(name for name, n in sentinels.nodes.items() if n.port == ports[0])
        assert sentinels.client(new).keys(f"{settings.redis_prefix}:*")


async def _walk_pages(client: httpx.AsyncClient, count: int) -> list[bytes]:
    pages: list[bytes] = []
    url: str | None = FIRST
    while url is not None and len(pages) < count:
        body, url = await _page(client, url)
        pages.append(body)
    return pages
