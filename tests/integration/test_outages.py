"""Cell outages against real database servers, one per cell (DESIGN §6), on PostgreSQL and
on MariaDB (every test runs once per backend).

Four private servers (:mod:`support.dbservers`: ``postgres`` or ``mariadbd``) hold the
cells; the API database lives on the shared server of the same
backend (127.0.0.1:5432 or 127.0.0.1:3306). Cell 4 is reached through an in-process TCP
delay proxy. Faults are real: an immediate stop (``pg_ctl stop -m immediate``; SIGKILL of
``mariadbd``: down), ``SIGSTOP`` of every server process (hung), +200 ms per client→server
chunk (slow). Nothing is mocked.

Every request a case makes is recorded and the fault matrix (case → status, rows, header,
latency) is printed at the end of the module (run pytest with ``-s`` to see it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
import uuid as uuidlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import insert, make_url, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from cells.registry import async_url
from cells.schema import instance_mappings, instances
from cells.seeding import SeedCell, SeedPlan, drop_database, reset_database, seed
from gateway.settings import Settings
from tests.support.apps import app_and_client, app_client
from tests.support.dbservers import (
    DelayProxy,
    MariaDBServer,
    MariaDBServers,
    PgServer,
    PgServers,
    require_mariadb,
    require_pg,
)
from tests.support.oracle import BASE, OracleQuery, Snapshot, auth, expected_uuids, load_snapshot
from tests.support.services import MYSQL_BASE, PG_BASE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

ADMIN = "admin:admin"
SERVERS = "/v2.1/servers"
DETAIL = "/v2.1/servers/detail"
HEADER = "X-Cells-Unavailable"
V269 = "2.69"

# --------------------------------------------------------------------------------------
# The fault matrix
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    case: str
    status: int
    rows: int
    header: str
    latency_ms: float
    note: str = ""


MATRIX: list[Seen] = []


BACKENDS = {"postgresql": "PostgreSQL", "mariadb": "MariaDB"}
# One private server, whatever the backend: both give database_url, stop, start, freeze,
# thaw and restore.
Server = PgServer | MariaDBServer
Servers = PgServers | MariaDBServers


@pytest.fixture(scope="module", params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    """Every test of the module runs on PostgreSQL cells, then on MariaDB cells."""
    name: str = request.param
    return name


@pytest.fixture(scope="module", autouse=True)
def fault_matrix(backend: str) -> Iterator[None]:
    MATRIX.clear()
    yield
    if not MATRIX:
        return
    width = max(len(s.case) for s in MATRIX)
    lines = [
        "",
        f"fault matrix (cellgate, real {BACKENDS[backend]} servers per cell)",
        f"{'case':<{width}}  status  rows  {'X-Cells-Unavailable':<19}  latency_ms  note",
    ]
    for s in MATRIX:
        lines.append(
            f"{s.case:<{width}}  {s.status:>6}  {s.rows:>4}  {s.header or '-':<19}  "
            f"{s.latency_ms:>10.1f}  {s.note}"
        )
    print("\n".join(lines))


@dataclass
class Reply:
    response: httpx.Response
    latency_ms: float

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def body(self) -> Any:
        return self.response.json()

    @property
    def servers(self) -> list[dict[str, Any]]:
        servers: list[dict[str, Any]] = self.body["servers"]
        return servers

    @property
    def ids(self) -> list[str]:
        return [s["id"] for s in self.servers]

    @property
    def unavailable(self) -> set[str]:
        value = self.response.headers.get(HEADER)
        return set(value.split(",")) if value else set()

    @property
    def next_href(self) -> str | None:
        links = self.body.get("servers_links")
        if not links:
            return None
        href: str = links[0]["href"]
        assert href.startswith(BASE), href
        return href.removeprefix(BASE)


async def get(
    client: httpx.AsyncClient,
    url: str,
    token: str = ADMIN,
    version: str | None = None,
    *,
    case: str | None = None,
    note: str = "",
) -> Reply:
    headers = auth(token)
    if version is not None:
        headers["OpenStack-API-Version"] = f"compute {version}"
    started = time.perf_counter()
    response = await client.get(url, headers=headers)
    reply = Reply(response, (time.perf_counter() - started) * 1000)
    if case is not None:
        rows = len(response.json().get("servers", [])) if response.status_code == 200 else 0
        MATRIX.append(
            Seen(
                case,
                response.status_code,
                rows,
                response.headers.get(HEADER, ""),
                reply.latency_ms,
                note,
            )
        )
    return reply


def url(path: str, **params: object) -> str:
    return f"{path}?{urlencode(params)}" if params else path


# --------------------------------------------------------------------------------------
# Servers, proxy, data
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def db_servers(backend: str, request: pytest.FixtureRequest) -> Iterator[Servers]:
    """Four private servers of ``backend`` (cell1..cell4), torn down even when a test
    fails; the shared server of the same backend must be up too (the API database)."""
    servers: Servers
    if backend == "mariadb":
        request.getfixturevalue("mariadb")
        require_mariadb()
        servers = MariaDBServers(4)
    else:
        request.getfixturevalue("postgres")
        require_pg()
        servers = PgServers(4)
    with servers:
        yield servers


def api_base(backend: str) -> str:
    """The shared server of ``backend``, where the API database lives."""
    return MYSQL_BASE if backend == "mariadb" else PG_BASE


def via_port(url: str, port: int) -> str:
    """``url`` reached on another loopback port (the delay proxy's)."""
    return make_url(url).set(port=port).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def proxy(db_servers: Servers) -> Iterator[DelayProxy]:
    """The delay proxy in front of cell4's server (no delay unless a test sets one)."""
    server = db_servers.servers[3]
    delay = DelayProxy("127.0.0.1", server.port).start()
    yield delay
    delay.close()


@pytest.fixture(autouse=True)
def _restore_after_each(request: pytest.FixtureRequest) -> Iterator[None]:
    """Whatever a test did to the servers, the next one starts with all of them healthy."""
    yield
    if "db_servers" in request.fixturenames:
        servers: Servers = request.getfixturevalue("db_servers")
        for server in servers.servers:
            server.restore()
    if "proxy" in request.fixturenames:
        request.getfixturevalue("proxy").delay_s = 0.0


async def restore(*servers: Server) -> None:
    for server in servers:
        await asyncio.to_thread(server.restore)


@dataclass(frozen=True)
class Dataset:
    """The seeded outage data: ~4,000 instances over 4 cells (none empty)."""

    api_url: str
    cell_urls: list[str]
    snapshot: Snapshot
    cell_of: dict[str, str]  # instance uuid → cell name
    servers: list[Server]

    def settings(self, **overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "api_database_url": self.api_url,
            "auth_mode": "noauth",
            "page_cache_ttl_s": 0.0,  # every request must really reach the cells
        }
        return Settings(**{**base, **overrides})

    def sort_key(self, uuid: str) -> tuple[float, str]:
        """The default order (created_at desc, uuid asc) as an ascending key."""
        row = self.snapshot.by_uuid(uuid)
        created = row["created_at"]
        assert isinstance(created, dt.datetime)
        return (-created.timestamp(), uuid)


@dataclass(frozen=True)
class _Cells:
    api_url: str
    cells: list[SeedCell]


async def _read_uuids(database_url: str) -> list[str]:
    engine = create_async_engine(async_url(database_url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return [str(u) for u in (await conn.execute(select(instances.c.uuid))).scalars()]
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
async def dataset(backend: str, db_servers: Servers, proxy: DelayProxy) -> AsyncIterator[Dataset]:
    servers: list[Server] = list(db_servers.servers)
    api_url = f"{api_base(backend)}/cg_outage_api_{os.getpid()}"
    cell_urls = [s.database_url("outage") for s in servers[:3]]
    cell_urls.append(via_port(servers[3].database_url("outage"), proxy.port))
    targets = [SeedCell(f"cell{i}", u) for i, u in enumerate(cell_urls, start=1)]
    await reset_database(api_url)
    await seed(api_url, targets, SeedPlan(instances=4_000, seed=17, empty_cells=0), progress=False)
    snapshot = await load_snapshot(_Cells(api_url, targets))  # type: ignore[arg-type]  # _Cells stands in for a CellSet: the oracle reads api_url and cells only
    cell_of: dict[str, str] = {}
    for target in targets:
        for u in await _read_uuids(target.url):
            cell_of[u] = target.name
    assert set(cell_of.values()) == {"cell1", "cell2", "cell3", "cell4"}
    yield Dataset(api_url, cell_urls, snapshot, cell_of, servers)
    await drop_database(api_url)


def oracle_all(data: Dataset) -> list[str]:
    """Admin, all_tenants, default order."""
    return expected_uuids(data.snapshot, OracleQuery(project_id=None))


# --------------------------------------------------------------------------------------
# a. A server stopped mid-walk
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["2.1", V269])
async def test_server_stopped_mid_walk(dataset: Dataset, version: str) -> None:
    """Pages continue (200, header naming cell2); no duplicate and no gap among the live
    cells; at 2.69 cell2's instances continue as stubs, so nothing is missing at all;
    after the restart and the cool-down, pages carry cell2's real rows again."""
    case = f"a stopped mid-walk @{version}"
    cell2 = dataset.servers[1]
    expected = oracle_all(dataset)
    # No read-ahead: rows read ahead before the crash (about two pages of each cell) would
    # serve the four outage pages, and cell2's gap (or its stubs) might not show in them.
    # Measured with read-ahead: every row still returned once, in order.
    settings = dataset.settings(breaker_cooldown_s=0.5, read_ahead_max=0)
    returned: list[str] = []
    stubs: list[str] = []
    async with app_client(settings) as client:
        try:
            href: str | None = url(SERVERS, all_tenants=1, limit=100)
            for page in range(1, 4):
                assert href is not None
                reply = await get(client, href, version=version)
                assert reply.status == 200
                assert not reply.unavailable
                returned += reply.ids
                href = reply.next_href
                if page == 3:
                    MATRIX.append(Seen(case, 200, len(reply.ids), "", reply.latency_ms, "page 3"))
            assert returned == expected[:300]

            await asyncio.to_thread(cell2.stop, "immediate")
            outage_pages: list[Reply] = []
            for _ in range(4):
                assert href is not None
                reply = await get(client, href, version=version)
                assert reply.status == 200, reply.response.text
                outage_pages.append(reply)
                returned += reply.ids
                for server in reply.servers:
                    if server.get("status") == "UNKNOWN" and "name" not in server:
                        assert set(server) == {"id", "status", "links"}
                        stubs.append(server["id"])
                href = reply.next_href
            for n, reply in enumerate(outage_pages, start=4):
                MATRIX.append(
                    Seen(
                        case,
                        reply.status,
                        len(reply.ids),
                        reply.response.headers.get(HEADER, ""),
                        reply.latency_ms,
                        f"page {n}, cell2 stopped",
                    )
                )
            # The first outage pages may still be served from the cached frontier (cell2's
            # rows read before the crash; how many pages that covers depends on the refill
            # sizes); once cell2 must be asked, every page names it.
            assert any(r.unavailable == {"cell2"} for r in outage_pages)
            first = next(i for i, r in enumerate(outage_pages) if r.unavailable)
            assert all(r.unavailable == {"cell2"} for r in outage_pages[first:])

            await asyncio.to_thread(cell2.start)
            await asyncio.sleep(settings.breaker_cooldown_s + 0.1)
            assert href is not None
            marker = href.rsplit("marker=", 1)[1]
            after_restore: list[str] = []
            restored_first: Reply | None = None
            while href is not None:
                reply = await get(client, href, version=version)
                assert reply.status == 200
                assert not reply.unavailable, "the half-open probe should have closed it"
                restored_first = restored_first or reply
                after_restore += reply.ids
                href = reply.next_href
            assert restored_first is not None
            MATRIX.append(
                Seen(
                    case,
                    restored_first.status,
                    len(restored_first.ids),
                    "",
                    restored_first.latency_ms,
                    "first page after restart + cool-down",
                )
            )
        finally:
            await restore(cell2)
    returned += after_restore

    # After the restore: exactly the oracle past the marker, cell2 included.
    tail = expected_uuids(dataset.snapshot, OracleQuery(project_id=None), after=marker)
    assert after_restore == tail
    assert any(dataset.cell_of[u] == "cell2" for u in after_restore)

    # The whole walk: strictly increasing in the order (no duplicate, nothing reordered).
    keys = [dataset.sort_key(u) for u in returned]
    broken = [i for i in range(len(keys) - 1) if not keys[i] < keys[i + 1]]
    dups = sorted({u for u in returned if returned.count(u) > 1})
    assert not broken, f"order broken at {broken[:5]} ({len(broken)}); {len(dups)} duplicates"
    # Live cells: every row, none missing (no gap).
    live = {"cell1", "cell3", "cell4"}
    assert [u for u in returned if dataset.cell_of[u] in live] == [
        u for u in expected if dataset.cell_of[u] in live
    ]
    cell2_expected = [u for u in expected if dataset.cell_of[u] == "cell2"]
    cell2_returned = [u for u in returned if dataset.cell_of[u] == "cell2"]
    if version == V269:
        # Stubs stand in for cell2: nothing visible is missing. Stubs come from the mappings,
        # which also list soft-deleted instances (queued_for_delete is false for them, as
        # in Nova), so the only extra rows allowed are such stubs.
        assert stubs, "2.69 should show cell2's instances as stubs"
        assert set(cell2_expected) <= set(cell2_returned)
        extra = set(cell2_returned) - set(cell2_expected)
        assert extra <= set(stubs)
        for u in extra:
            assert dataset.snapshot.by_uuid(u)["deleted"] == 0
    else:
        assert not stubs
        # cell2's rows: a prefix before the crash and everything after the restore marker.
        gap = [u for u in cell2_expected if u not in set(cell2_returned)]
        assert gap, "cell2 was down for four pages; its rows there are skipped"
        assert cell2_returned == [u for u in cell2_expected if u not in set(gap)]
        assert all(dataset.sort_key(u) < dataset.sort_key(marker) for u in gap)


# --------------------------------------------------------------------------------------
# b. A frozen server (SIGSTOP), e. two of them
# --------------------------------------------------------------------------------------


async def test_server_frozen(dataset: Dataset) -> None:
    """The first request costs one deadline (+20%), the next ones none (breaker open); after
    SIGCONT and the cool-down, the half-open probe brings the cell back."""
    case = "b frozen (SIGSTOP) cell2"
    timeout_s, cooldown_s = 1.0, 2.5
    cell2 = dataset.servers[1]
    expected = oracle_all(dataset)[:100]
    settings = dataset.settings(cell_timeout_s=timeout_s, breaker_cooldown_s=cooldown_s)
    page = url(SERVERS, all_tenants=1, limit=100)
    async with app_and_client(settings) as (app, client):
        try:
            warm = await get(client, page, case=case, note="before: warm pool")
            assert warm.status == 200
            assert warm.ids == expected
            assert not warm.unavailable

            await asyncio.to_thread(cell2.freeze)
            first = await get(client, page, case=case, note="first request while frozen")
            opened = time.monotonic()  # the breaker opened as the timeout was reported
            assert first.status == 200
            assert first.unavailable == {"cell2"}
            live = [u for u in oracle_all(dataset) if dataset.cell_of[u] != "cell2"][:100]
            assert first.ids == live
            assert first.latency_ms <= timeout_s * 1.2 * 1000, first.latency_ms

            cell2_client = app.state.cellgate.clients[2]
            assert cell2_client.breaker_state.value == "open"
            for n in range(3):
                nxt = await get(
                    client, page, case=case, note=f"next request {n + 1} (breaker open)"
                )
                assert nxt.status == 200
                assert nxt.unavailable == {"cell2"}
                assert nxt.ids == live
                assert nxt.latency_ms < 300, nxt.latency_ms
            assert time.monotonic() - opened < cooldown_s, "the cool-down ran out during the test"

            await asyncio.to_thread(cell2.thaw)
            await asyncio.sleep(max(0.0, cooldown_s - (time.monotonic() - opened)) + 0.1)
            probe = await get(client, page, case=case, note="after SIGCONT + cool-down (probe)")
            assert probe.status == 200
            assert not probe.unavailable
            assert probe.ids == expected
            assert cell2_client.breaker_state.value == "closed"
            ready = await get(client, "/readyz")
            assert ready.status == 200
            assert ready.body["checks"]["cell:cell2"][0]["breaker"] == "closed"
            assert ready.body["status"] == "pass"
        finally:
            await restore(cell2)


async def first_complete(client: httpx.AsyncClient, page: str, within_s: float, why: str) -> Reply:
    """Ask ``page`` every 0.1 s until it names no unavailable cell; fail with ``why`` after
    ``within_s``."""
    started = time.monotonic()
    while (reply := await get(client, page)).unavailable:
        assert time.monotonic() - started < within_s, why
        await asyncio.sleep(0.1)
    return reply


async def test_a_thawed_cell_is_back_by_a_ping_not_a_cool_down(dataset: Dataset) -> None:
    """With pings every 0.3 s and a 30 s cool-down: while cell2 is frozen no request waits
    on it (each unanswered ping starts the cool-down again); after SIGCONT the next ping's
    answer ends the cool-down and a request is complete again within seconds."""
    case = "b frozen cell2, thawed: back by a ping"
    cell2 = dataset.servers[1]
    expected = oracle_all(dataset)[:100]
    settings = dataset.settings(
        cell_timeout_s=1.0, breaker_cooldown_s=30.0, breaker_ping_interval_s=0.3
    )
    page = url(SERVERS, all_tenants=1, limit=100)
    async with app_and_client(settings) as (app, client):
        try:
            assert (await get(client, page)).ids == expected
            await asyncio.to_thread(cell2.freeze)
            first = await get(client, page, case=case, note="first request while frozen")
            assert first.unavailable == {"cell2"}
            cell2_client = app.state.cellgate.clients[2]
            await asyncio.sleep(2.5)  # several pings, none answered
            held = await get(client, page, case=case, note="frozen 2.5 s later")
            assert held.unavailable == {"cell2"}
            assert held.latency_ms < 300, held.latency_ms
            assert cell2_client.pings_answered == 0

            await asyncio.to_thread(cell2.thaw)
            thawed = time.monotonic()
            reply = await first_complete(client, page, 5.0, "not back 5 s after SIGCONT")
            back_ms = (time.monotonic() - thawed) * 1000
            MATRIX.append(Seen(case, 200, len(reply.ids), "", back_ms, "first complete, SIGCONT"))
            assert reply.ids == expected
            assert cell2_client.pings_answered == 1
            assert cell2_client.breaker_state.value == "closed"
        finally:
            await restore(cell2)


async def test_a_cached_partial_page_answers_only_while_its_cell_is_down(
    dataset: Dataset,
) -> None:
    """Page cache on (30 s): while cell2 is stopped and its breaker open, an identical
    request is answered from the cache, naming cell2; once cell2 answers again (a ping ends
    its 30 s cool-down), the same request is complete although the cached partial page has
    not expired."""
    case = "a' stopped cell2, page cache"
    cell2 = dataset.servers[1]
    expected = oracle_all(dataset)[:100]
    settings = dataset.settings(
        page_cache_ttl_s=30.0, breaker_cooldown_s=30.0, breaker_ping_interval_s=0.3
    )
    page = url(SERVERS, all_tenants=1, limit=100)
    async with app_and_client(settings) as (app, client):
        metrics = app.state.cellgate.metrics
        cell2_client = app.state.cellgate.clients[2]

        def hits() -> float:
            return metrics.sample("cellgate_page_cache_total", result="hit")

        try:
            await asyncio.to_thread(cell2.stop, "immediate")
            while not cell2_client.skipping:  # the breaker opens at its second failure
                assert (await get(client, page, case=case)).unavailable == {"cell2"}
            before = hits()
            computed = await get(client, page, case=case, note="breaker open")
            cached = await get(client, page, case=case, note="the same again: cached")
            assert cached.unavailable == {"cell2"}
            assert cached.ids == computed.ids
            assert hits() >= before + 1

            await asyncio.to_thread(cell2.start)
            reply = await first_complete(client, page, 10.0, "a cached partial page outlived cell2")
            assert reply.ids == expected
        finally:
            await restore(cell2)


async def test_hung_cells_never_hold_a_request(dataset: Dataset) -> None:
    """Two frozen cells, a cold gateway (the hang is in the connection handshake):
    the request returns within one deadline (+20%), partial."""
    case = "e two frozen cells (cold)"
    cell1, cell3 = dataset.servers[0], dataset.servers[2]
    settings = dataset.settings(cell_timeout_s=1.0, request_budget_s=3.0, breaker_cooldown_s=30)
    live = [u for u in oracle_all(dataset) if dataset.cell_of[u] in {"cell2", "cell4"}][:100]
    async with app_client(settings) as client:
        try:
            await asyncio.to_thread(cell1.freeze)
            await asyncio.to_thread(cell3.freeze)
            first = await get(client, url(SERVERS, all_tenants=1, limit=100), case=case)
            assert first.status == 200, first.response.text
            assert first.unavailable == {"cell1", "cell3"}
            assert first.ids == live
            assert first.latency_ms <= 1200, first.latency_ms
            again = await get(
                client, url(DETAIL, all_tenants=1, limit=100), case=case, note="detail, next"
            )
            assert again.status == 200
            assert again.unavailable == {"cell1", "cell3"}
            assert again.latency_ms < 300, again.latency_ms
        finally:
            await restore(cell1, cell3)


async def test_hung_cells_warm_pool(dataset: Dataset) -> None:
    """The same two frozen cells with pooled connections (the hang is in the query)."""
    case = "e two frozen cells (warm)"
    cell1, cell3 = dataset.servers[0], dataset.servers[2]
    settings = dataset.settings(cell_timeout_s=1.0, request_budget_s=3.0, breaker_cooldown_s=30)
    page = url(SERVERS, all_tenants=1, limit=100)
    async with app_client(settings) as client:
        try:
            assert (await get(client, page)).status == 200
            await asyncio.to_thread(cell1.freeze)
            await asyncio.to_thread(cell3.freeze)
            first = await get(client, page, case=case)
            assert first.status == 200, first.response.text
            assert first.unavailable == {"cell1", "cell3"}
            assert first.latency_ms <= 1200, first.latency_ms
        finally:
            await restore(cell1, cell3)


# --------------------------------------------------------------------------------------
# c. A slow cell
# --------------------------------------------------------------------------------------


async def test_slow_cell(dataset: Dataset, proxy: DelayProxy) -> None:
    """+200 ms per client→server chunk on cell4, default deadline: complete, no header."""
    case = "c slow cell4 (+200 ms/chunk)"
    settings = dataset.settings()
    expected = oracle_all(dataset)
    proxy.delay_s = 0.2
    try:
        async with app_client(settings) as client:
            cold = await get(client, url(SERVERS, all_tenants=1, limit=100), case=case, note="cold")
            warm = await get(client, url(SERVERS, all_tenants=1, limit=100), case=case, note="warm")
            detail = await get(
                client, url(DETAIL, all_tenants=1, limit=1000), case=case, note="warm, detail"
            )
    finally:
        proxy.delay_s = 0.0
    for reply in (cold, warm):
        assert reply.status == 200
        assert not reply.unavailable
        assert reply.ids == expected[:100]
    assert detail.status == 200
    assert not detail.unavailable
    assert detail.ids == expected[:1000]
    assert proxy.chunks_delayed > 0
    assert warm.latency_ms >= 200, "the proxy did not slow cell4 down"


# --------------------------------------------------------------------------------------
# d. Nova's 2.69 matrix, improved
# --------------------------------------------------------------------------------------

P, Q = "proj-p", "proj-q"
P_TOKEN, Q_TOKEN = f"alice:{P}", f"bob:{Q}"
T0 = dt.datetime(2024, 6, 1, 12, 0, 0)
# Newest first: (cell, project). P's 5th instance lives in cell2, which will be down.
TIMELINE = [
    ("cell1", P),
    ("cell2", P),
    ("cell1", Q),
    ("cell3", P),
    ("cell4", P),
    ("cell2", P),
    ("cell1", P),
    ("cell3", Q),
    ("cell3", P),
    ("cell4", P),
]
DOWN = {"cell2", "cell3"}


@dataclass(frozen=True)
class Instance:
    uuid: str
    cell: str
    project: str
    created_at: dt.datetime


@dataclass(frozen=True)
class Matrix:
    api_url: str
    instances: list[Instance]  # newest first
    servers: list[Server]

    def settings(self, **overrides: Any) -> Settings:
        base: dict[str, Any] = {
            "api_database_url": self.api_url,
            "auth_mode": "noauth",
            "page_cache_ttl_s": 0.0,
        }
        return Settings(**{**base, **overrides})

    def of(self, project: str | None) -> list[Instance]:
        return [i for i in self.instances if project is None or i.project == project]

    def server(self, cell: str) -> Server:
        return self.servers[int(cell.removeprefix("cell")) - 1]


@pytest.fixture(scope="module")
async def matrix(backend: str, db_servers: Servers) -> AsyncIterator[Matrix]:
    servers: list[Server] = list(db_servers.servers)
    api_url = f"{api_base(backend)}/cg_outage_d_api_{os.getpid()}"
    targets = [SeedCell(f"cell{i}", s.database_url("outage_d")) for i, s in enumerate(servers, 1)]
    await reset_database(api_url)
    await seed(api_url, targets, SeedPlan(instances=0), progress=False)  # tables + cell_mappings
    made: list[Instance] = []
    for n, (cell, project) in enumerate(TIMELINE):
        created = T0 - dt.timedelta(minutes=n)
        made.append(
            Instance(str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"d/{n}")), cell, project, created)
        )
    api = create_async_engine(async_url(api_url), poolclass=NullPool)
    try:
        async with api.begin() as conn:
            await conn.execute(
                insert(instance_mappings),
                [
                    {
                        "instance_uuid": i.uuid,
                        "cell_id": int(i.cell.removeprefix("cell")),
                        "project_id": i.project,
                        "user_id": "u",
                        "queued_for_delete": False,
                        "created_at": i.created_at,
                    }
                    for i in made
                ],
            )
    finally:
        await api.dispose()
    for target in targets:
        engine = create_async_engine(async_url(target.url), poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                rows = [
                    {
                        "uuid": i.uuid,
                        "project_id": i.project,
                        "user_id": "u",
                        "display_name": f"vm-{i.uuid[:8]}",
                        "vm_state": "active",
                        "power_state": 1,
                        "created_at": i.created_at,
                        "updated_at": i.created_at,
                        "deleted": 0,
                    }
                    for i in made
                    if i.cell == target.name
                ]
                await conn.execute(insert(instances), rows)
        finally:
            await engine.dispose()
    yield Matrix(api_url, made, servers)
    await drop_database(api_url)


def _iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_stubs(reply: Reply, expected: list[Instance], *, detail: bool) -> None:
    """Order exact; down-cell instances as stubs with exactly Nova's keys."""
    assert reply.ids == [i.uuid for i in expected]
    for server, instance in zip(reply.servers, expected, strict=True):
        if instance.cell in DOWN:
            keys = {"id", "status", "links"} | ({"tenant_id", "created"} if detail else set())
            assert set(server) == keys, server
            assert server["status"] == "UNKNOWN"
            if detail:
                assert server["tenant_id"] == instance.project
                assert server["created"] == _iso(instance.created_at)
        else:
            assert "name" in server
            assert server.get("status") != "UNKNOWN"


async def _walk(
    client: httpx.AsyncClient, first: str, token: str, version: str, case: str
) -> tuple[list[str], list[Reply]]:
    href: str | None = first
    ids: list[str] = []
    replies: list[Reply] = []
    while href is not None:
        reply = await get(client, href, token, version, case=case, note=f"page {len(replies) + 1}")
        assert reply.status == 200, reply.response.text
        replies.append(reply)
        ids += reply.ids
        href = reply.next_href
        assert len(replies) < 20
    return ids, replies


async def test_nova_269_matrix(matrix: Matrix) -> None:
    p_all = matrix.of(P)
    p_ids = [i.uuid for i in p_all]
    down = [matrix.server(c) for c in sorted(DOWN)]
    marker_in_down = p_all[4]
    assert marker_in_down.cell in DOWN

    # Marker in a down cell, frontier cached: page 1 read while every cell was up.
    async with app_client(matrix.settings()) as client:
        try:
            page1 = await get(client, url(SERVERS, limit=5), P_TOKEN, V269)
            assert page1.status == 200
            assert page1.ids == p_ids[:5]
            assert not page1.unavailable
            href = page1.next_href
            assert href is not None
            assert href.endswith(f"marker={marker_in_down.uuid}")
            for server in down:
                await asyncio.to_thread(server.stop, "immediate")
            cached = await get(
                client, href, P_TOKEN, V269, case="d marker in down cell, cached", note="2.69"
            )
            assert cached.status == 200, cached.response.text
            assert cached.ids == p_ids[5:]
            assert cached.next_href is None
        except BaseException:
            await restore(*down)
            raise

    try:
        async with app_client(matrix.settings()) as client:
            summary = await get(client, SERVERS, P_TOKEN, V269, case="d P summary 2.69")
            assert summary.status == 200
            assert summary.unavailable == DOWN
            _check_stubs(summary, p_all, detail=False)

            detail = await get(client, DETAIL, P_TOKEN, V269, case="d P detail 2.69")
            assert detail.status == 200
            assert detail.unavailable == DOWN
            _check_stubs(detail, p_all, detail=True)

            admin = await get(
                client, url(SERVERS, all_tenants=1), ADMIN, V269, case="d admin all_tenants 2.69"
            )
            assert admin.status == 200
            assert admin.unavailable == DOWN
            _check_stubs(admin, matrix.of(None), detail=False)
            assert len(admin.ids) == 10

            q_detail = await get(client, DETAIL, Q_TOKEN, V269, case="d Q detail 2.69")
            assert q_detail.status == 200
            _check_stubs(q_detail, matrix.of(Q), detail=True)

            # limit=5 pages through all 8, stubs included, in created_at desc order; page 2's
            # marker is a cell2 stub, resolved from its mapping (nothing cached).
            ids, pages = await _walk(client, url(SERVERS, limit=5), P_TOKEN, V269, "d P limit=5")
            assert ids == p_ids
            assert [len(p.ids) for p in pages] == [5, 3]
            assert all(p.unavailable == DOWN for p in pages)
            _, detail_pages = await _walk(
                client, url(DETAIL, limit=3), P_TOKEN, V269, "d P detail limit=3"
            )
            _check_stubs(detail_pages[0], p_all[:3], detail=True)
            assert [u for p in detail_pages for u in p.ids] == p_ids

            # Marker in a down cell, not cached, for an order the mappings cannot give.
            uncached_default = await get(
                client,
                url(DETAIL, limit=5, marker=marker_in_down.uuid),
                P_TOKEN,
                V269,
                case="d marker in down cell, uncached",
                note="default order: mapping",
            )
            assert uncached_default.status == 200
            assert uncached_default.ids == p_ids[5:]
            by_name = await get(
                client,
                url(SERVERS, limit=5, sort_key="display_name", marker=marker_in_down.uuid),
                P_TOKEN,
                V269,
                case="d marker in down cell, uncached",
                note="sort_key=display_name",
            )
            assert by_name.status == 503, by_name.response.text
            assert by_name.response.headers["Retry-After"] == "30"
            assert "cell2" in by_name.response.text

            # Orders the mappings cannot honour: Nova's behaviour (no stubs).
            named = await get(
                client,
                url(SERVERS, sort_key="display_name", sort_dir="asc"),
                P_TOKEN,
                V269,
                case="d P sort_key=display_name 2.69",
                note="no stubs (Nova)",
            )
            assert named.status == 200
            assert named.unavailable == DOWN
            assert sorted(named.ids) == sorted(i.uuid for i in p_all if i.cell not in DOWN)

            # Below 2.69 the down cells are skipped, and the header says so.
            old = await get(client, SERVERS, P_TOKEN, "2.68", case="d P summary 2.68")
            assert old.status == 200
            assert old.unavailable == DOWN
            assert old.ids == [i.uuid for i in p_all if i.cell not in DOWN]
            plain = await get(client, DETAIL, P_TOKEN, None, case="d P detail 2.1")
            assert plain.status == 200
            assert plain.unavailable == DOWN
            assert len(plain.ids) == 4

        # list_records_by_skipping_down_cells = false: Nova fails the listing (cellgate:
        # 503), except the 2.69+ requests it answers with stubs (no paging, sorting or
        # filter), where Nova ignores the option (gateway.celldown).
        async with app_client(matrix.settings(list_records_by_skipping_down_cells=False)) as client:
            for version, href in [
                ("2.1", SERVERS),
                ("2.68", SERVERS),
                (V269, url(SERVERS, limit=50)),
                (V269, url(SERVERS, sort_key="created_at")),
                (V269, url(SERVERS, name="a")),
            ]:
                strict = await get(
                    client, href, P_TOKEN, version, case=f"d strict mode {version} {href}"
                )
                assert strict.status == 503, strict.response.text
                assert strict.response.headers["Retry-After"] == "30"
                fault = strict.body["serviceUnavailable"]
                assert fault["code"] == 503
                assert "cell2" in fault["message"]
                assert "cell3" in fault["message"]
            for href in (SERVERS, DETAIL):
                stubbed = await get(client, href, P_TOKEN, V269, case=f"d strict mode {href}")
                assert stubbed.status == 200, stubbed.response.text
                assert stubbed.unavailable == DOWN
                _check_stubs(stubbed, p_all, detail=href == DETAIL)
            everyone = await get(client, url(SERVERS, all_tenants=1), ADMIN, V269)
            assert everyone.status == 200, everyone.response.text
            _check_stubs(everyone, matrix.of(None), detail=False)

        # Every cell down: at 2.69 the stubs are something to show (200, as Nova); below,
        # or in an order the mappings cannot honour, 503 — never an empty 200.
        others = [matrix.server("cell1"), matrix.server("cell4")]
        for server in others:
            await asyncio.to_thread(server.stop, "immediate")
        try:
            async with app_client(matrix.settings()) as client:
                stubs = await get(client, SERVERS, P_TOKEN, V269, case="d all 4 cells down 2.69")
                assert stubs.status == 200, stubs.response.text
                assert stubs.ids == [i.uuid for i in p_all]  # every one a stub, in order
                assert all(s["status"] == "UNKNOWN" for s in stubs.body["servers"])
                assert set(stubs.unavailable) == {"cell1", "cell2", "cell3", "cell4"}
                dead = await get(client, SERVERS, P_TOKEN, "2.1", case="d all 4 cells down 2.1")
                assert dead.status == 503, dead.response.text
                assert dead.response.headers["Retry-After"] == "30"
                dead = await get(
                    client,
                    url(SERVERS, sort_key="display_name"),
                    P_TOKEN,
                    V269,
                    case="d all down, 2.69 unstubbable order",
                )
                assert dead.status == 503
                admin = await get(
                    client, url(SERVERS, all_tenants=1), ADMIN, V269, case="d all down, admin"
                )
                assert admin.status == 200
                assert admin.ids
                assert all(s["status"] == "UNKNOWN" for s in admin.body["servers"])
        finally:
            await restore(*others)
    finally:
        await restore(*down)
