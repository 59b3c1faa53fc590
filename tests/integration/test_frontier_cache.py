"""The cached merge frontier, page cache and single-flight against real Redis and PostgreSQL.

One seeded set: 100,000 instances over 8 PostgreSQL cells (skewed, the last one empty).
Every test uses its own ``redis_prefix`` so no two share keys. Tests that stop, flush or
black-hole Redis use a private ``redis-server`` (or socket) they start themselves; the
shared server on 6379 is only read and written under unique prefixes.

The "cache off" baseline points ``redis_url`` at a closed port: every store call fails
(then the breaker skips it), so every lookup is a miss — the code path a dead Redis takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from cache import REDIS_FAILURES_TO_OPEN, RedisStore, create_store
from cells import Breaker
from gateway.settings import Settings
from gateway.state import AppState
from tests.support.apps import app_and_client
from tests.support.cellsets import CellSet, drop_postgres, seed_postgres
from tests.support.liveserver import free_port

pytestmark = pytest.mark.integration

ADMIN = {"X-Auth-Token": "admin:admin"}
DEMO = {"X-Auth-Token": "demo:demo"}
ALL_TENANTS = (("all_tenants", "1"),)
SERVERS = "/v2.1/servers"
SHARED_REDIS = "redis://127.0.0.1:6379/0"

App = tuple[FastAPI, httpx.AsyncClient]


# --- seeded cells and settings ---------------------------------------------------------


@pytest.fixture(scope="module")
async def seeded(postgres: str) -> AsyncIterator[CellSet]:
    # Own database names per run: two runs of this file at once must not drop each other's.
    cell_set = await seed_postgres(f"cg_cache_{os.getpid()}", cells=8, instances=100_000)
    yield cell_set
    await drop_postgres(cell_set)


def _prefix() -> str:
    return f"cgtest-{uuid.uuid4().hex[:12]}"


def _settings(seeded: CellSet, redis_url: str | None, **overrides: object) -> Settings:
    # No read-ahead: these walks account each page's own queries to that page (a read-ahead
    # runs after its page answered; tests/integration/test_read_ahead.py covers it).
    options: dict[str, object] = {
        "redis_prefix": _prefix(),
        "page_cache_ttl_s": 0,
        "read_ahead_max": 0,
    }
    options.update(overrides)
    return seeded.settings(redis_url=redis_url, **options)


def _off_settings(seeded: CellSet) -> Settings:
    # Nothing listens on a just-freed port: every Redis call fails fast and counts as a miss;
    # and no in-process copy is kept while Redis does not answer, so no page resumes from a
    # frontier.
    return _settings(seeded, f"redis://127.0.0.1:{free_port()}/0", redis_fallback_max_bytes=0)


def _state(app: FastAPI) -> AppState:
    state: AppState = app.state.cellgate
    return state


def _store(app: FastAPI) -> RedisStore:
    store = _state(app).store
    assert isinstance(store, RedisStore)
    return store


# --- counters --------------------------------------------------------------------------


@dataclass(frozen=True)
class Counters:
    """The listing counters of one app at one moment (or a difference of two)."""

    queries: dict[str, float]
    fetched: dict[str, float]
    returned: float
    hits: float
    misses: float

    @classmethod
    def of(cls, app: FastAPI) -> Counters:
        state = _state(app)
        # One pass over the registry (``sample()`` collects it all on every call).
        values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for metric in state.metrics.registry.collect():
            for sample in metric.samples:
                values[sample.name, tuple(sorted(sample.labels.items()))] = sample.value

        def get(name: str, **labels: str) -> float:
            return values.get((name, tuple(sorted(labels.items()))), 0.0)

        labels = [c.label for c in state.cells]
        return cls(
            {c: get("cellgate_cell_queries_total", cell=c) for c in labels},
            {c: get("cellgate_cell_rows_fetched_total", cell=c) for c in labels},
            get("cellgate_rows_returned_total"),
            get("cellgate_frontier_lookups_total", result="hit"),
            get("cellgate_frontier_lookups_total", result="miss"),
        )

    def __sub__(self, other: Counters) -> Counters:
        return Counters(
            {c: v - other.queries.get(c, 0) for c, v in self.queries.items()},
            {c: v - other.fetched.get(c, 0) for c, v in self.fetched.items()},
            self.returned - other.returned,
            self.hits - other.hits,
            self.misses - other.misses,
        )

    @property
    def total_queries(self) -> float:
        return sum(self.queries.values())

    @property
    def total_fetched(self) -> float:
        return sum(self.fetched.values())


@dataclass
class PageCost:
    uuids: list[str]
    cost: Counters
    seconds: float
    marker: str | None
    saved: dict[str, tuple[bool, list[str]]] | None = None  # the frontier the page resumed
    servers: list[dict[str, object]] | None = None  # the full entries, when kept


@dataclass
class Walk:
    pages: list[PageCost] = field(default_factory=list)

    @property
    def uuids(self) -> list[list[str]]:
        return [p.uuids for p in self.pages]

    def total(self, attr: str) -> float:
        return sum(getattr(p.cost, attr) for p in self.pages)

    def summary(self) -> tuple[float, float, float]:
        """Queries per page, rows fetched per page, p50 page latency (ms)."""
        n = len(self.pages)
        p50 = statistics.median(p.seconds for p in self.pages) * 1000
        return self.total("total_queries") / n, self.total("total_fetched") / n, p50


Hook = Callable[[int], Awaitable[None]]
Inspect = Callable[[str], Awaitable[dict[str, tuple[bool, list[str]]] | None]]


async def walk(
    apps: Sequence[App],
    limit: int,
    *,
    headers: dict[str, str] = ADMIN,
    params: tuple[tuple[str, str], ...] = ALL_TENANTS,
    before_page: Hook | None = None,
    inspect: Inspect | None = None,
    path: str = SERVERS,
    keep: bool = False,
) -> Walk:
    """Follow ``servers_links`` to the end, alternating over ``apps``; every page a 200."""
    result = Walk()
    url, query = path, [*params, ("limit", str(limit))]
    marker: str | None = None
    n = 0
    while True:
        app, client = apps[n % len(apps)]
        if before_page is not None:
            await before_page(n)
        saved = await inspect(marker) if inspect is not None and marker is not None else None
        before = Counters.of(app)
        started = time.perf_counter()
        response = await client.get(url, params=query, headers=headers)
        seconds = time.perf_counter() - started
        assert response.status_code == 200, (n, response.text)
        body = response.json()
        uuids = [s["id"] for s in body["servers"]]
        cost = Counters.of(app) - before
        servers = body["servers"] if keep else None
        result.pages.append(PageCost(uuids, cost, seconds, marker, saved, servers))
        links = body.get("servers_links")
        if not links:
            return result
        href = urlsplit(links[0]["href"])
        url, query = href.path, parse_qsl(href.query, keep_blank_values=True)
        marker = dict(query)["marker"]
        assert marker == uuids[-1]
        n += 1


def _cells_asked(page: PageCost) -> int:
    return sum(1 for q in page.cost.queries.values() if q)


def _flat(pages: list[list[str]]) -> list[str]:
    return [u for page in pages for u in page]


# --- the cache-off reference walks -------------------------------------------------------

LIMITS = (100, 1000)


@pytest.fixture(scope="module")
async def reference(seeded: CellSet) -> dict[int, Walk]:
    """Walks with the frontier off (every store call fails), per limit."""
    walks: dict[int, Walk] = {}
    for limit in LIMITS:
        async with app_and_client(_off_settings(seeded)) as app:
            walks[limit] = await walk([app], limit)
            assert walks[limit].total("hits") == 0
    full = _flat(walks[LIMITS[0]].uuids)
    assert len(full) == len(set(full)) > 90_000
    for limit in LIMITS:
        assert _flat(walks[limit].uuids) == full
    return walks


# --- private Redis servers -----------------------------------------------------------------


def _require_redis_binaries() -> None:
    if shutil.which("redis-server") and shutil.which("redis-cli"):
        return
    if os.environ.get("CI") == "true":
        pytest.fail("redis-server / redis-cli not installed")
    pytest.skip("redis-server / redis-cli not installed")


def _cli(port: int, *args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=20
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"redis-cli {args}: {done.stderr or done.stdout}")
    return done.stdout


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too, so at most 55535."""
    for _ in range(200):
        port = free_port()
        if port > 55535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class PrivateRedis:
    """A ``redis-server`` on a free port that this test starts, stops and kills."""

    def __init__(self, root: Path, *extra: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = root / f"redis-{self.port}"
        self.dir.mkdir(parents=True)
        self.extra = extra
        self.pids: list[int] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        pidfile = self.dir / "redis.pid"
        pidfile.unlink(missing_ok=True)
        subprocess.run(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "yes", "--dir", str(self.dir),
             "--pidfile", str(pidfile), "--logfile", str(self.dir / "redis.log"),
             *self.extra],
            check=True, timeout=20,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while _cli(self.port, "ping", check=False).strip() != "PONG":
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on {self.port} did not start")
            time.sleep(0.02)
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.pids.append(int(pidfile.read_text().strip()))

    def shutdown(self) -> None:
        """Stop the server without saving (the client sees the connection drop)."""
        _cli(self.port, "shutdown", "nosave", check=False)
        deadline = time.monotonic() + 10
        while _cli(self.port, "ping", check=False).strip() == "PONG":
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on {self.port} did not stop")
            time.sleep(0.02)

    def kill(self) -> None:
        """Kill every server process this object started that is still running."""
        for pid in self.pids:
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"redis-server" in cmdline and str(self.port).encode() in cmdline:
                    os.kill(pid, signal.SIGKILL)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    _require_redis_binaries()
    server = PrivateRedis(tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.shutdown()
        server.kill()


@pytest.fixture
def redis_cluster(tmp_path: Path) -> Iterator[list[PrivateRedis]]:
    """A 3-master Redis Cluster on free ports, torn down after the test."""
    _require_redis_binaries()
    nodes: list[PrivateRedis] = []
    try:
        for _ in range(3):
            node = PrivateRedis(tmp_path, "--cluster-enabled", "yes", port=_cluster_port())
            node.extra = (*node.extra, "--cluster-config-file", str(node.dir / "nodes.conf"))
            node.start()
            nodes.append(node)
        addresses = [f"127.0.0.1:{n.port}" for n in nodes]
        _cli(nodes[0].port, "--cluster", "create", *addresses, "--cluster-replicas", "0",
             "--cluster-yes")  # fmt: skip
        deadline = time.monotonic() + 20
        for node in nodes:
            while "cluster_state:ok" not in _cli(node.port, "cluster", "info"):
                if time.monotonic() > deadline:
                    raise RuntimeError("the cluster did not reach state ok")
                time.sleep(0.05)
        yield nodes
    finally:
        for node in nodes:
            node.shutdown()
            node.kill()


def _frontier_reader(redis: Redis, prefix: str) -> Inspect:
    """Read the frontier a page will resume from: per cell id, (exhausted, buffered uuids)."""
    tag: list[str] = []

    async def read(marker: str) -> dict[str, tuple[bool, list[str]]] | None:
        if not tag:
            async for key in redis.scan_iter(match=f"{prefix}:v2:frontier:*", count=1000):
                tag.append(key.decode().split(":v2:frontier:", 1)[1].rsplit(":", 1)[0])
                break
        if not tag:
            return None
        blob = await redis.get(f"{prefix}:v2:frontier:{tag[0]}:{marker}")
        if blob is None:
            return None
        body = orjson.loads(blob)
        at = body["c"].index("uuid")
        return {
            str(cell_id): (bool(exhausted), [row[at] for row in table])
            for cell_id, exhausted, _, _, table in body["cells"]
        }

    return read


# --- a. warm sequential walk --------------------------------------------------------------


@pytest.mark.parametrize("limit", LIMITS)
async def test_warm_walk_queries_only_drained_cells(
    seeded: CellSet, redis_url: str, reference: dict[int, Walk], limit: int
) -> None:
    settings = _settings(seeded, redis_url)
    redis = Redis.from_url(redis_url)
    try:
        async with app_and_client(settings) as app:
            labels = {str(c.id): c.label for c in _state(app[0]).cells}
            cached = await walk(
                [app], limit, inspect=_frontier_reader(redis, settings.redis_prefix)
            )
    finally:
        await redis.aclose()

    off = reference[limit]
    assert cached.uuids == off.uuids
    pages = len(cached.pages)
    assert cached.total("hits") == pages - 1
    assert cached.total("misses") == 0

    # After page 1, a cell is queried only if its saved buffer drained: it started empty or
    # every row it held was returned by this page; an exhausted cell is never asked again.
    for n, page in enumerate(cached.pages[1:], 1):
        assert page.saved is not None, f"page {n}: no frontier saved for its marker"
        returned = set(page.uuids)
        for cell_id, (exhausted, buffered) in page.saved.items():
            if page.cost.queries[labels[cell_id]] == 0:
                continue
            assert not exhausted, (n, labels[cell_id])
            assert set(buffered) <= returned, (n, labels[cell_id], len(buffered))
    later = cached.pages[1:]
    queries_after_first = sum(p.cost.total_queries for p in later) / len(later)
    cells_after_first = sum(_cells_asked(p) for p in later) / len(later)
    off_later = off.pages[1:]
    off_queries = sum(p.cost.total_queries for p in off_later) / len(off_later)
    assert all(_cells_asked(p) == 8 for p in off_later)  # no frontier: every cell, every page
    assert cells_after_first < 4, cells_after_first
    assert queries_after_first < 0.6 * off_queries, (queries_after_first, off_queries)
    ratio = cached.total("total_fetched") / cached.total("returned")
    assert cached.total("returned") == sum(len(p) for p in cached.uuids)
    assert ratio <= 1.2, ratio

    buffered = [len(rows) for p in later for _, rows in (p.saved or {}).values()]
    buffered_rows = sum(buffered) / len(later)
    off_ratio = off.total("total_fetched") / off.total("returned")
    on_q, on_rows, on_p50 = cached.summary()
    off_q, off_rows, off_p50 = off.summary()
    print(
        f"\n100k-row walk, 8 cells, limit {limit}: {pages} pages, "
        f"{cached.total('returned'):.0f} rows"
        f"\n  {'':<10}{'queries/page':>14}{'rows fetched/page':>19}{'fetched/returned':>18}"
        f"{'p50 page ms':>13}"
        f"\n  {'cache on':<10}{on_q:>14.2f}{on_rows:>19.1f}{ratio:>18.3f}{on_p50:>13.1f}"
        f"\n  {'cache off':<10}{off_q:>14.2f}{off_rows:>19.1f}{off_ratio:>18.3f}{off_p50:>13.1f}"
        f"\n  pages >= 2: cache on {queries_after_first:.2f} queries/page over "
        f"{cells_after_first:.2f} cells; cache off {off_queries:.2f} queries/page over 8 cells"
        f" (+2 marker look-ups per page, not counted); rows buffered per saved frontier: "
        f"{buffered_rows:.1f}"
    )


async def test_detail_walk_by_nullable_key_returns_identical_entries(
    seeded: CellSet, redis_url: str
) -> None:
    """Every column round-trips through the cached frontier: NULL sort values (launched_at),
    datetimes, booleans, JSON text; the entries equal a cache-off walk's field by field."""
    params = (
        *ALL_TENANTS,
        ("project_id", "proj-04"),  # ~5k instances, ~4% never launched
        ("sort_key", "launched_at"),
        ("sort_dir", "asc"),
    )
    detail = f"{SERVERS}/detail"
    async with app_and_client(_settings(seeded, redis_url)) as app:
        cached = await walk([app], 200, params=params, path=detail, keep=True)
    async with app_and_client(_off_settings(seeded)) as app:
        off = await walk([app], 200, params=params, path=detail, keep=True)
    assert len(cached.pages) > 20
    assert cached.total("hits") == len(cached.pages) - 1
    launched = [s["OS-SRV-USG:launched_at"] for p in cached.pages for s in p.servers or []]
    assert None in launched  # the walk crosses the NULL/non-NULL boundary
    assert [p.servers for p in cached.pages] == [p.servers for p in off.pages]


async def test_frontier_ttl_slides_on_every_hit(seeded: CellSet, redis_url: str) -> None:
    ttl_s = 60.0
    settings = _settings(seeded, redis_url, frontier_ttl_s=ttl_s)
    redis = Redis.from_url(redis_url)
    try:
        async with app_and_client(settings) as (_, client):
            first = await client.get(SERVERS, params={"limit": "50"}, headers=DEMO)
            marker = first.json()["servers"][-1]["id"]
            [key] = [k async for k in redis.scan_iter(match=f"{settings.redis_prefix}:*{marker}")]
            written = await redis.pttl(key)
            assert ttl_s * 1000 * 0.95 <= written <= ttl_s * 1000 * 1.1  # TTL plus jitter
            await redis.pexpire(key, 2000)
            second = await client.get(
                SERVERS, params={"limit": "50", "marker": marker}, headers=DEMO
            )
            assert second.status_code == 200
            assert ttl_s * 1000 * 0.95 <= await redis.pttl(key) <= ttl_s * 1000 * 1.1
    finally:
        await redis.aclose()


# --- b. identical pages whatever happens to Redis ---------------------------------------------


async def test_flushdb_before_every_page(
    seeded: CellSet, reference: dict[int, Walk], private_redis: PrivateRedis
) -> None:
    redis = Redis.from_url(private_redis.url)

    async def flush(n: int) -> None:
        await redis.flushdb()

    try:
        async with app_and_client(_settings(seeded, private_redis.url)) as app:
            flushed = await walk([app], 1000, before_page=flush)
            assert _store(app[0]).stats.errors == 0
    finally:
        await redis.aclose()
    assert flushed.uuids == reference[1000].uuids
    assert flushed.total("hits") == 0
    assert flushed.total("misses") == len(flushed.pages) - 1


async def test_redis_stopped_mid_walk(
    seeded: CellSet, reference: dict[int, Walk], private_redis: PrivateRedis
) -> None:
    expected = reference[1000].uuids
    stop_at, restart_at = len(expected) // 3, 2 * len(expected) // 3

    async def outage(n: int) -> None:
        if n == stop_at:
            await asyncio.to_thread(private_redis.shutdown)
        elif n == restart_at:
            await asyncio.to_thread(private_redis.start)

    settings = _settings(seeded, private_redis.url, redis_cooldown_s=0.2)
    async with app_and_client(settings) as app:
        pages = await walk([app], 1000, before_page=outage)
        stats = _store(app[0]).stats
    assert pages.uuids == expected
    assert stats.errors >= 1
    before = pages.pages[1:stop_at]
    during = pages.pages[stop_at:restart_at]
    after = pages.pages[restart_at:]
    assert all(p.cost.hits == 1 for p in before)
    # The outage's first page misses (its frontier is in the stopped Redis only); from then
    # on each page resumes from the copy this process keeps while Redis does not answer.
    assert during[0].cost.hits == 0
    assert all(p.cost.hits == 1 for p in during[1:]), [p.cost.hits for p in during]
    assert stats.fallback_hits >= len(during) - 1
    # Once Redis is back (empty), pages go on resuming from the copy until the store's
    # breaker lets calls through again (its cool-down spans a machine-load-dependent number
    # of pages). The first call Redis answers is either a read (a miss: that page re-seeds
    # the walk there) or a page's write (no miss at all); either empties the copy, and from
    # then on every page resumes from Redis.
    hits = [p.cost.hits for p in after]
    assert hits.count(0) <= 1, hits
    assert stats.hits > len(before), "pages after the restart resumed from Redis too"
    print(
        f"\nRedis stopped at page {stop_at + 1}, restarted at page {restart_at + 1} of "
        f"{len(expected)}: store errors {stats.errors}, skipped {stats.skipped}, in-process "
        f"copy hits {stats.fallback_hits}; frontier hits "
        f"{pages.total('hits'):.0f} ({sum(p.cost.hits for p in after):.0f} of {len(after)} "
        f"after the restart)"
    )


async def test_two_apps_alternating_pages(
    seeded: CellSet, redis_url: str, reference: dict[int, Walk]
) -> None:
    settings = _settings(seeded, redis_url)
    async with app_and_client(settings) as one, app_and_client(settings) as two:
        pages = await walk([one, two], 1000)
    assert pages.uuids == reference[1000].uuids
    # Every page after the first resumed from the frontier the *other* app saved.
    assert pages.total("hits") == len(pages.pages) - 1
    assert all(p.cost.hits == 1 for p in pages.pages[1:])


@contextlib.asynccontextmanager
async def black_hole() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never answers."""
    never = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            await never.wait()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        never.set()
        server.close()
        for writer in writers:
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        await server.wait_closed()


async def test_uncacheable_redis_costs_one_timeout_per_call() -> None:
    """Each call to a server that never answers ends at the timeout; once the breaker is
    open, calls are skipped at no cost. What a failed write would have stored is read back
    from the in-process copy."""
    timeout_s = 0.05
    async with black_hole() as port:
        store = create_store(
            f"redis://127.0.0.1:{port}/0",
            cluster=False,
            op_timeout_s=timeout_s,
            connect_timeout_s=timeout_s,
            breaker=Breaker(REDIS_FAILURES_TO_OPEN, 60),
            max_memory_entries=1,
        )
        assert isinstance(store, RedisStore)
        try:
            costs = []
            for i in range(5):
                started = time.perf_counter()
                if i % 2:
                    await store.set("k", b"v", 10)
                else:  # nothing before the first failed write; then the copy's value
                    assert await store.get("k", 10) == (None if i == 0 else b"v")
                costs.append(time.perf_counter() - started)
        finally:
            await store.close()
    assert (store.stats.errors, store.stats.skipped) == (3, 2)
    assert store.stats.fallback_hits == 2
    assert all(timeout_s * 0.9 <= c <= timeout_s + 0.1 for c in costs[:3]), costs
    assert all(c < 0.005 for c in costs[3:]), costs


async def test_uncacheable_redis(seeded: CellSet, reference: dict[int, Walk]) -> None:
    timeout_s, cooldown_s = 0.05, 1.0
    async with black_hole() as port:
        settings = _settings(
            seeded,
            f"redis://127.0.0.1:{port}/0",
            redis_timeout_s=timeout_s,
            redis_cooldown_s=cooldown_s,
            page_cache_ttl_s=2.0,  # the page cache's calls go to the black hole too
        )
        started = time.monotonic()
        async with app_and_client(settings) as app:
            pages = await walk([app], 1000)
            stats = _store(app[0]).stats
        elapsed = time.monotonic() - started
    assert pages.uuids == reference[1000].uuids
    # Redis never answers, so each page after the first resumes from the in-process copy.
    assert pages.total("hits") == len(pages.pages) - 1
    assert stats.fallback_hits == len(pages.pages) - 1
    assert stats.hits == stats.misses == stats.writes == 0
    # Three timeouts open the breaker; after that one probe per cool-down, the rest skipped.
    assert stats.errors >= 3
    assert stats.errors <= 3 + math.ceil(elapsed / cooldown_s) + 1, (stats.errors, elapsed)
    assert stats.skipped > 2 * len(pages.pages)
    later = [p.seconds for p in pages.pages[1:]]
    print(
        f"\nblack-holed Redis: {len(pages.pages)} pages in {elapsed:.2f} s, "
        f"{stats.errors} timed-out calls (<= {stats.errors * timeout_s:.2f} s added), "
        f"{stats.skipped} skipped, {stats.fallback_hits} pages resumed from the in-process "
        f"copy; page 1 {pages.pages[0].seconds * 1000:.0f} ms (cold), "
        f"later pages p50 {statistics.median(later) * 1000:.0f} ms, max {max(later) * 1000:.0f} ms"
        f" (cache off p50 {reference[1000].summary()[2]:.0f} ms)"
    )


# --- c. Redis Cluster -----------------------------------------------------------------------


async def test_redis_cluster_walk(
    seeded: CellSet, reference: dict[int, Walk], redis_cluster: list[PrivateRedis]
) -> None:
    settings = _settings(seeded, redis_cluster[0].url.removesuffix("/0"), redis_cluster=True)
    async with app_and_client(settings) as app:
        pages = await walk([app], 1000)
        stats = _store(app[0]).stats
    assert pages.uuids == reference[1000].uuids
    assert pages.total("hits") > 0
    print(
        f"\ncluster walk: {len(pages.pages)} pages, frontier hits {pages.total('hits'):.0f}, "
        f"store errors {stats.errors}, skipped {stats.skipped}"
    )
    assert pages.total("hits") == len(pages.pages) - 1, stats
    assert stats.errors == 0, stats  # the slot map is built outside the per-call budget


# --- d. tenant isolation -------------------------------------------------------------------


async def test_a_projects_frontier_is_never_used_for_another(
    seeded: CellSet, redis_url: str
) -> None:
    settings = _settings(seeded, redis_url, page_cache_ttl_s=2.0)
    prefix = settings.redis_prefix
    async with app_and_client(settings) as (app, client):
        detail = await client.get(
            f"{SERVERS}/detail", params={"all_tenants": "1", "limit": "200"}, headers=ADMIN
        )
        other = next(
            s["tenant_id"]
            for s in detail.json()["servers"]
            if s["tenant_id"] not in {"demo", "admin"}
        )
        other_headers = {"X-Auth-Token": f"{other}:{other}"}

        first = await client.get(SERVERS, params={"limit": "100"}, headers=DEMO)
        assert first.status_code == 200
        marker = first.json()["servers"][-1]["id"]
        redis = Redis.from_url(redis_url)
        try:
            saved = [k async for k in redis.scan_iter(match=f"{prefix}:v2:frontier:*:{marker}")]
        finally:
            await redis.aclose()
        assert len(saved) == 1  # demo's frontier is there to be misused

        # The other project, same query, same marker: not its instance, and no cache hit.
        before = Counters.of(app)
        stolen = await client.get(
            SERVERS, params={"limit": "100", "marker": marker}, headers=other_headers
        )
        cost = Counters.of(app) - before
        assert stolen.status_code == 400, stolen.text
        assert f"marker [{marker}] not found" in stolen.text
        assert (cost.hits, cost.misses) == (0, 1)

        # The same URL as demo's first page serves the other project its own rows.
        own = await client.get(SERVERS, params={"limit": "100"}, headers=other_headers)
        assert own.status_code == 200
        assert not {s["id"] for s in own.json()["servers"]} & {
            s["id"] for s in first.json()["servers"]
        }

        # An admin may use demo's marker, but not demo's frontier: the all-tenants page after
        # it must be what a cache-off gateway returns.
        before = Counters.of(app)
        admin_page = await client.get(
            SERVERS, params={"all_tenants": "1", "limit": "100", "marker": marker}, headers=ADMIN
        )
        cost = Counters.of(app) - before
        assert admin_page.status_code == 200
        assert (cost.hits, cost.misses) == (0, 1)

        # demo itself does resume from its frontier.
        before = Counters.of(app)
        second = await client.get(SERVERS, params={"limit": "100", "marker": marker}, headers=DEMO)
        assert second.status_code == 200
        assert (Counters.of(app) - before).hits == 1

    async with app_and_client(_off_settings(seeded)) as (_, off_client):
        expected = await off_client.get(
            SERVERS, params={"all_tenants": "1", "limit": "100", "marker": marker}, headers=ADMIN
        )
        expected_second = await off_client.get(
            SERVERS, params={"limit": "100", "marker": marker}, headers=DEMO
        )
    assert admin_page.json()["servers"] == expected.json()["servers"]
    assert second.json()["servers"] == expected_second.json()["servers"]


# --- e. coalescing -------------------------------------------------------------------------


async def _cold_concurrent(
    settings: Settings, params: dict[str, str], n: int
) -> tuple[list[httpx.Response], Counters, dict[str, float], list[str]]:
    async with app_and_client(settings) as (app, client):
        before = Counters.of(app)
        responses = await asyncio.gather(
            *(client.get(SERVERS, params=params, headers=ADMIN) for _ in range(n))
        )
        cost = Counters.of(app) - before
        m = _state(app).metrics
        outcomes = {
            r: m.sample("cellgate_page_cache_total", result=r) for r in ("hit", "miss", "coalesced")
        }
        labels = [c.label for c in _state(app).cells]
    return responses, cost, outcomes, labels


@pytest.mark.parametrize("page_cache_ttl_s", [2.0, 0.0], ids=["page-cache", "single-flight-only"])
@pytest.mark.parametrize("limit", [1, 10])
async def test_concurrent_identical_cold_requests_cost_one_fan_out(
    seeded: CellSet, redis_url: str, page_cache_ttl_s: float, limit: int
) -> None:
    params = {"all_tenants": "1", "limit": str(limit)}
    # What one request costs alone (limit 1: one batch per cell; limit 10: the big cell
    # needs a second batch).
    [alone], single, _, labels = await _cold_concurrent(_settings(seeded, redis_url), params, 1)
    assert set(single.queries) == set(labels)
    if limit == 1:
        assert single.queries == dict.fromkeys(labels, 1)

    settings = _settings(seeded, redis_url, page_cache_ttl_s=page_cache_ttl_s)
    responses, cost, outcomes, _ = await _cold_concurrent(settings, params, 32)
    assert all(r.status_code == 200 for r in responses)
    assert {r.content for r in responses} == {alone.content}
    assert len(alone.json()["servers"]) == limit
    assert cost.queries == single.queries  # 32 requests, one fan-out
    assert cost.fetched == single.fetched
    assert cost.returned == limit
    assert outcomes["miss"] == 1, outcomes
    assert outcomes["hit"] + outcomes["coalesced"] == 31, outcomes


async def test_without_coalescing_each_identical_request_runs_its_own(
    seeded: CellSet, redis_url: str
) -> None:
    """``coalesce_listings=false`` (the benchmarks' distinct requests): no page cache, no
    shared flight, so 8 identical concurrent requests cost 8 fan-outs."""
    params = {"all_tenants": "1", "limit": "1"}
    [alone], single, _, _ = await _cold_concurrent(_settings(seeded, redis_url), params, 1)
    settings = _settings(seeded, redis_url, page_cache_ttl_s=0.0, coalesce_listings=False)
    responses, cost, outcomes, _ = await _cold_concurrent(settings, params, 8)
    assert {r.content for r in responses} == {alone.content}
    assert cost.queries == {label: 8 * n for label, n in single.queries.items()}
    assert outcomes["miss"] == 8, outcomes
    assert outcomes["coalesced"] == outcomes["hit"] == 0, outcomes
