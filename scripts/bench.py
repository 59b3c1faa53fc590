#!/usr/bin/env python3
"""cellgate benchmark: one run, one data set, every baseline side by side.

    scripts/bench            # the real run (400k instances, < 15 minutes on 2 cores)
    scripts/bench --quick    # a smoke run (4k instances, well under a minute)

What it does, in order (all against 127.0.0.1 only; every phase is bounded in time):

1. Seeds the *same* instances twice with one ``SeedPlan`` seed: into 8 cell databases
   (``<prefix>8_cell1..8`` + ``<prefix>_api8``) and into ONE cell database
   (``<prefix>1_cell1`` + ``<prefix>_api1``). The generator draws every value from one
   ``Random(seed)`` whatever the cell count, so both sets hold identical instances (uuids,
   timestamps, projects...; only the per-cell autoincrement ``id`` differs). The walks
   below check that both answer the same uuids in the same order.
2. In-process pair (no HTTP, no rendering): the sharded gateway's ``list_page`` vs a
   Nova-style lister (serial per-cell batches of ``max(min(int(limit/k*1.1), limit), 100)``
   rows, marker re-resolution per page, ``heapq.merge``-style merge with a cmp-style Python
   comparison), both on the same engines; plus the unsharded gateway for reference.
3. OFFSET vs keyset: ``ORDER BY created_at DESC, uuid LIMIT n OFFSET m`` on the unsharded
   cell vs the keyset query starting at the same depth.
4. Two ``cellgate serve`` subprocesses (sharded, unsharded) on free ports: first-page latency
   (requests alternate between the two servers), 20-page walks, throughput at a fixed
   concurrency, per-request cell queries/rows from ``/metrics``, CPU per request, a locust
   cross-check (``scripts/locustfile.py``) and a py-spy profile of the sharded server.
5. Writes ``BENCHMARKS.md`` and PNG plots under ``docs/bench/`` (``--quick`` writes to a
   temporary directory unless ``--out`` is given), stops the servers, drops the databases
   (``--keep`` keeps them; ``--reuse`` skips seeding when kept databases match).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import heapq
import itertools
import json
import logging
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# Settings() reads CELLGATE_* from the environment: keep the caller's shell out of the run.
for _name in [n for n in os.environ if n.startswith("CELLGATE_")]:
    del os.environ[_name]

import asyncpg  # noqa: E402
import orjson  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine  # noqa: E402

from cells import EngineOptions, InstanceFilters, SortSpec, create_engine_for  # noqa: E402
from cells.filters import where_clauses  # noqa: E402
from cells.keyset import after_position, order_by  # noqa: E402
from cells.order import Direction  # noqa: E402
from cells.schema import instance_mappings, instances  # noqa: E402
from cells.seed import (  # noqa: E402
    SeedCell,
    SeedPlan,
    drop_database,
    reset_database,
    seed,
)
from gateway.auth import Principal  # noqa: E402
from gateway.lifespan import build_state  # noqa: E402
from gateway.listing import list_page  # noqa: E402
from gateway.request import parse_list_request  # noqa: E402
from gateway.settings import Settings  # noqa: E402

log = logging.getLogger("bench")

ADMIN = Principal("admin", "admin", True)
DEMO = Principal("demo", "demo", False)
TOKENS = {"admin": "admin:admin", "demo": "demo:demo"}
PRINCIPALS = {"admin": ADMIN, "demo": DEMO}
LIMITS = (100, 1000)
SCENARIOS = [(who, limit) for who in ("admin", "demo") for limit in LIMITS]
HTTP_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------------------
# Run profiles
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    name: str
    instances: int
    warmup: int  # requests per server/system before each measured scenario
    http_n: dict[int, int]  # sequential first-page samples per server, per limit
    inproc_n: dict[int, int]  # in-process first-page samples per system, per limit
    walk_pages: int
    walk_limit: int
    walk_reps: int
    inproc_walk_reps: int
    tput_s: float
    tput_warmup_s: float
    offset_depths: tuple[int, ...]
    offset_reps: int
    locust_s: int
    locust_servers: tuple[str, ...]
    profile_s: float
    clients: int
    phase_cap_s: float  # a scenario stops sampling after this long (it keeps >= 5 samples)
    max_s: float


QUICK = Profile(
    name="quick",
    instances=4_000,
    warmup=2,
    http_n={100: 10, 1000: 5},
    inproc_n={100: 6, 1000: 3},
    walk_pages=3,
    walk_limit=1000,
    walk_reps=1,
    inproc_walk_reps=1,
    tput_s=1.5,
    tput_warmup_s=0.3,
    offset_depths=(0, 1_000, 2_500),
    offset_reps=2,
    locust_s=2,
    locust_servers=("sharded",),
    profile_s=0.0,
    clients=2,
    phase_cap_s=10.0,
    max_s=240.0,
)
FULL = Profile(
    name="full",
    instances=400_000,
    warmup=15,
    http_n={100: 200, 1000: 80},
    inproc_n={100: 60, 1000: 25},
    walk_pages=20,
    walk_limit=1000,
    walk_reps=3,
    inproc_walk_reps=2,
    tput_s=15.0,
    tput_warmup_s=1.0,
    offset_depths=(0, 1_000, 10_000, 50_000, 100_000, 200_000, 300_000),
    offset_reps=7,
    locust_s=15,
    locust_servers=("sharded", "unsharded"),
    profile_s=10.0,
    clients=8,
    phase_cap_s=45.0,
    max_s=14 * 60.0,
)


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary_ms(samples_s: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "n": len(ms),
        "p50": pct(ms, 0.5),
        "p95": pct(ms, 0.95),
        "mean": statistics.fmean(ms) if ms else math.nan,
        "min": min(ms) if ms else math.nan,
    }


def ratio(a: float, b: float) -> float:
    return a / b if a and b and not math.isnan(a) and not math.isnan(b) else math.nan


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


_CLK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (0 if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    rest = raw[raw.rindex(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / _CLK


def pg_backends_cpu_s(dbnames: frozenset[str]) -> float:
    """CPU seconds of the PostgreSQL backends connected to ``dbnames`` (live ones)."""
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            title = Path(f"/proc/{entry.name}/cmdline").read_bytes()
        except OSError:
            continue
        if not title.startswith(b"postgres: "):
            continue
        tokens = title.decode("latin-1").replace("\x00", " ").split()
        if any(t in dbnames for t in tokens[2:5]):
            total += proc_cpu_s(int(entry.name))
    return total


def machine_busy_s() -> float:
    """CPU seconds all processes of the machine have used (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _CLK


def self_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


# --------------------------------------------------------------------------------------
# Databases
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    """Database names of one run: 8-cell ("sharded") and 1-cell ("unsharded") sets."""

    base_url: str
    prefix: str

    def url(self, db: str) -> str:
        return f"{self.base_url}/{db}"

    @property
    def api8(self) -> str:
        return f"{self.prefix}_api8"

    @property
    def cells8(self) -> list[str]:
        return [f"{self.prefix}8_cell{n}" for n in range(1, 9)]

    @property
    def api1(self) -> str:
        return f"{self.prefix}_api1"

    @property
    def cells1(self) -> list[str]:
        return [f"{self.prefix}1_cell1"]

    @property
    def all_dbs(self) -> list[str]:
        return [self.api8, *self.cells8, self.api1, *self.cells1]


async def _pg(layout: Layout, db: str = "postgres") -> asyncpg.Connection:
    parts = urlsplit(layout.base_url)
    return await asyncpg.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        database=db,
        timeout=10,
    )


async def _stamp(layout: Layout, db: str) -> str | None:
    conn = await _pg(layout)
    try:
        return await conn.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", db
        )
    finally:
        await conn.close()


@dataclass
class DataInfo:
    instances: int
    seed: int
    per_cell8: dict[str, int]
    per_cell1: dict[str, int]
    seed_s: float
    reused: bool
    visible_admin: int = 0  # rows an admin all_tenants listing shows (not deleted)
    visible_demo: int = 0


async def prepare_data(layout: Layout, profile: Profile, seed_value: int, reuse: bool) -> DataInfo:
    wanted = f"cellgate-bench instances={profile.instances} seed={seed_value}"
    started = time.perf_counter()
    stamps = await asyncio.gather(*(_stamp(layout, db) for db in (layout.api8, layout.api1)))
    reused = reuse and all(s == wanted for s in stamps)
    plan = SeedPlan(instances=profile.instances, seed=seed_value)
    if reused:
        say(f"reusing kept databases ({wanted})")
    else:
        say(f"seeding {profile.instances} instances (seed {seed_value}) into 8 cells and 1 cell")
        await asyncio.gather(*(reset_database(layout.url(db)) for db in layout.all_dbs))
        targets8 = [SeedCell(f"cell{n}", layout.url(db)) for n, db in enumerate(layout.cells8, 1)]
        targets1 = [SeedCell("cell1", layout.url(layout.cells1[0]))]
        await asyncio.gather(
            seed(layout.url(layout.api8), targets8, plan, progress=False),
            seed(layout.url(layout.api1), targets1, plan, progress=False),
        )

        # Fresh COPYs leave no visibility map or hint bits; autovacuum would do this mid-run.
        async def vacuum(db: str, table: str) -> None:
            conn = await _pg(layout, db)
            try:
                await conn.execute(f"VACUUM (ANALYZE) {table}")
            finally:
                await conn.close()

        await asyncio.gather(
            *(vacuum(db, "instances") for db in [*layout.cells8, *layout.cells1]),
            *(vacuum(db, "instance_mappings") for db in (layout.api8, layout.api1)),
        )
        conn = await _pg(layout)
        try:
            for db in (layout.api8, layout.api1):
                await conn.execute(f"COMMENT ON DATABASE \"{db}\" IS '{wanted}'")
        finally:
            await conn.close()

    async def count(db: str) -> int:
        conn = await _pg(layout, db)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM instances"))
        finally:
            await conn.close()

    per8 = dict(
        zip(
            [f"cell{n}" for n in range(1, 9)],
            await asyncio.gather(*(count(db) for db in layout.cells8)),
            strict=True,
        )
    )
    per1 = {"cell1": await count(layout.cells1[0])}
    conn = await _pg(layout, layout.cells1[0])
    try:
        visible = "deleted = 0 AND (vm_state <> 'soft-delete' OR vm_state IS NULL)"
        admin = await conn.fetchval(f"SELECT count(*) FROM instances WHERE {visible}")
        demo = await conn.fetchval(
            f"SELECT count(*) FROM instances WHERE project_id = 'demo' AND {visible}"
        )
    finally:
        await conn.close()
    if sum(per8.values()) != profile.instances or per1["cell1"] != profile.instances:
        raise RuntimeError(f"seeded counts do not match the plan: {per8} / {per1}")
    return DataInfo(
        profile.instances,
        seed_value,
        per8,
        per1,
        time.perf_counter() - started,
        reused,
        int(admin),
        int(demo),
    )


# --------------------------------------------------------------------------------------
# A minimal keep-alive HTTP/1.1 client (a few µs per request, so client cost does not
# blur the ratios; httpx costs ~10x more CPU per request on this 2-core machine)
# --------------------------------------------------------------------------------------


class HttpConn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, target: str, token: str | None = None) -> tuple[int, dict[str, str], bytes]:
        async with asyncio.timeout(HTTP_TIMEOUT_S):
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            assert self._reader is not None
            auth = f"X-Auth-Token: {token}\r\n" if token else ""
            self._writer.write(
                f"GET {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{auth}"
                "Accept: application/json\r\n\r\n".encode()
            )
            head = await self._reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
            if "content-length" in headers:
                body = await self._reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                body = await self._chunked()
            else:
                body = await self._reader.read()
                self.close()
            if headers.get("connection", "").lower() == "close":
                self.close()
            return status, headers, body

    async def _chunked(self) -> bytes:
        assert self._reader is not None
        parts = []
        while True:
            size = int((await self._reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                await self._reader.readline()
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readline()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


def ok_response(status: int, headers: dict[str, str]) -> bool:
    """A complete page: 200 and no cell missing from it."""
    return status == 200 and "x-cells-unavailable" not in headers


def next_target(body: bytes) -> str | None:
    """The path+query of the page's ``next`` link (read from the body's tail)."""
    idx = body.rfind(b'"servers_links":')
    if idx < 0:
        return None
    links = orjson.loads(body[idx + len(b'"servers_links":') : -1])
    for link in links:
        if link.get("rel") == "next":
            parts = urlsplit(link["href"])
            return f"{parts.path}?{parts.query}"
    return None


def body_ids(body: bytes) -> list[str]:
    return [s["id"] for s in orjson.loads(body)["servers"]]


# --------------------------------------------------------------------------------------
# Prometheus text from /metrics
# --------------------------------------------------------------------------------------


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_metrics(text: str) -> Samples:
    from prometheus_client.parser import text_string_to_metric_families

    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
    return out


def metric_total(samples: Samples, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= set(lab))


def metric_by(samples: Samples, name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for (n, lab), v in samples.items():
        if n == name:
            out[dict(lab).get(label, "")] += v
    return dict(out)


def metric_delta(before: Samples, after: Samples) -> Samples:
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def cost_per_request(delta: Samples, requests: int) -> dict[str, Any]:
    """Cell queries, rows fetched/returned per request, per-cell queries and mean time."""
    n = max(1, requests)
    queries = metric_by(delta, "cellgate_cell_queries_total", "cell")
    fetched = metric_by(delta, "cellgate_cell_rows_fetched_total", "cell")
    secs = metric_by(delta, "cellgate_cell_seconds_sum", "cell")
    calls = metric_by(delta, "cellgate_cell_seconds_count", "cell")
    per_cell = {
        cell: {
            "queries": queries.get(cell, 0.0) / n,
            "rows_fetched": fetched.get(cell, 0.0) / n,
            "ms": 1000 * secs.get(cell, 0.0) / calls[cell] if calls.get(cell) else math.nan,
        }
        for cell in sorted(queries, key=lambda c: (len(c), c))
        if cell.startswith("cell") and queries.get(cell, 0.0) > 0
    }
    lookups = metric_by(delta, "cellgate_frontier_lookups_total", "result")
    return {
        "queries": sum(queries.values()) / n,
        "rows_fetched": sum(fetched.values()) / n,
        "rows_returned": metric_total(delta, "cellgate_rows_returned_total") / n,
        "cells_asked": len(per_cell),
        "frontier_hit": lookups.get("hit", 0.0),
        "frontier_miss": lookups.get("miss", 0.0),
        "per_cell": per_cell,
    }


# --------------------------------------------------------------------------------------
# Gateway servers (``cellgate serve`` subprocesses)
# --------------------------------------------------------------------------------------


class Server:
    def __init__(self, name: str, api_url: str, env: dict[str, str], logdir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CELLGATE_")}
        self.env.update(env)
        self.env["CELLGATE_API_DATABASE_URL"] = api_url
        self.env["PYTHONPATH"] = str(REPO) + os.pathsep + self.env.get("PYTHONPATH", "")
        self.log_path = logdir / f"server-{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        cmd = [
            sys.executable,
            "-m",
            "gateway.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        conn = HttpConn("127.0.0.1", self.port)
        try:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    break
                try:
                    status, _, _ = await conn.get("/readyz")
                    if status == 200:
                        return
                except (OSError, asyncio.IncompleteReadError, TimeoutError):
                    conn.close()
                await asyncio.sleep(0.2)
        finally:
            conn.close()
        tail = self.log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"server {self.name} did not become ready:\n{tail}")

    def warnings(self) -> dict[str, int]:
        """Counts of WARNING/ERROR log messages (by message, numbers elided)."""
        counts: dict[str, int] = defaultdict(int)
        with contextlib.suppress(OSError):
            for line in self.log_path.read_text(errors="replace").splitlines():
                if not line.startswith("{"):
                    continue
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if entry.get("level") in ("WARNING", "ERROR"):
                        msg = re.sub(r"\d+(\.\d+)?", "N", str(entry.get("msg", "")))[:120]
                        counts[f"{entry['level']}: {msg}"] += 1
        return dict(counts)

    async def metrics(self) -> Samples:
        conn = HttpConn("127.0.0.1", self.port)
        try:
            status, _, body = await conn.get("/metrics")
        finally:
            conn.close()
        if status != 200:
            raise RuntimeError(f"/metrics of {self.name} answered {status}")
        return parse_metrics(body.decode())

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # uvicorn's graceful shutdown
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        self._log.close()


def first_target(who: str, limit: int, extra: str = "") -> str:
    query = f"limit={limit}" + ("&all_tenants=1" if who == "admin" else "")
    return f"/v2.1/servers/detail?{query}{extra}"


# --------------------------------------------------------------------------------------
# Nova-style baseline (in-process)
# --------------------------------------------------------------------------------------


class _SortCtx:
    """Nova's ``RecordSortContext.compare_records``: cmp over the keys, no NULL handling."""

    def __init__(self, keys: list[str], dirs: list[str]) -> None:
        self.pairs = list(zip(keys, dirs, strict=True))

    def compare_records(self, rec1: Any, rec2: Any) -> int:
        for skey, sdir in self.pairs:
            resultflag = 1 if sdir == "desc" else -1
            if rec1[skey] < rec2[skey]:
                return resultflag
            elif rec1[skey] > rec2[skey]:
                return resultflag * -1
        return 0


class _RecordWrapper:
    """Nova's ``RecordWrapper``: only ``__lt__``, through ``compare_records``."""

    __slots__ = ("_ctx", "rec")

    def __init__(self, ctx: _SortCtx, rec: Any) -> None:
        self._ctx = ctx
        self.rec = rec

    def __lt__(self, other: _RecordWrapper) -> bool:
        return self._ctx.compare_records(self.rec, other.rec) == -1


async def _amerge(iterables: list[AsyncIterator[_RecordWrapper]]) -> AsyncIterator[_RecordWrapper]:
    """``heapq.merge`` for async iterators, same structure: prime every input in turn (that
    is where Nova runs every cell's first batch, one after another), then advance the
    input that supplied the last value right after it is consumed."""
    h: list[list[Any]] = []
    for order, it in enumerate(iterables):
        with contextlib.suppress(StopAsyncIteration):
            h.append([await anext(it), order, it])
    heapq.heapify(h)
    while len(h) > 1:
        try:
            while True:
                value, _order, it = s = h[0]
                yield value
                s[0] = await anext(it)
                heapq.heapreplace(h, s)
        except StopAsyncIteration:
            heapq.heappop(h)
    if h:
        value, _order, it = h[0]
        yield value
        async for value in it:
            yield value


def nova_batch_size(limit: int, k: int) -> int:
    """``get_instance_list_cells_batch_size`` with the default ``distributed`` strategy."""
    if k <= 1:
        return limit
    return max(min(int((limit / k) * 1.10), limit), 100)


@dataclass
class NovaStats:
    queries: int = 0
    rows_fetched: int = 0
    per_cell_queries: dict[int, int] = field(default_factory=lambda: defaultdict(int))


class NovaStyleLister:
    """Nova's multi-cell instance list strategy on our schema, SQL from cells.keyset.

    Per page: the marker's mapping (API DB) and row (its cell); then, inside each cell's
    lazy generator, a "local marker" query (first row after the marker's values) and a
    "prefix" query for it in every other cell, then batches of
    ``max(min(int(limit/k*1.1), limit), 100)`` rows, each re-reading its marker row first
    (``instance_get_all_by_filters_sort`` does), a cell stopping only on an empty batch or
    after ``limit`` rows. All of it runs serially, driven by the heap merge.
    """

    def __init__(self, api: AsyncEngine, cells: list[tuple[int, AsyncEngine]]) -> None:
        self.api = api
        self.cells = cells
        self.spec = SortSpec.build([("created_at", Direction.DESC)])
        self.ctx = _SortCtx(list(self.spec.names), [k.direction.value for k in self.spec.keys])
        self.columns = list(instances.c)
        self.order = order_by(self.spec, instances.c)
        self.stats = NovaStats()

    async def _run(self, conn: AsyncConnection, stmt: Any, cell_id: int) -> list[Any]:
        rows = list((await conn.execute(stmt)).mappings().all())
        self.stats.queries += 1
        self.stats.rows_fetched += len(rows)
        self.stats.per_cell_queries[cell_id] += 1
        return rows

    async def _marker_row(self, conn: AsyncConnection, uuid: str, cell_id: int) -> Any:
        c = instances.c
        rows = await self._run(conn, select(*self.columns).where(c.uuid == uuid), cell_id)
        return rows[0] if rows else None

    async def _cell(
        self,
        cell_id: int,
        engine: AsyncEngine,
        filters: InstanceFilters,
        limit: int,
        batch: int,
        marker: str | None,
        marker_cell: int | None,
        marker_values: tuple[Any, ...] | None,
    ) -> AsyncIterator[_RecordWrapper]:
        c = instances.c
        base = where_clauses(filters)
        async with engine.connect() as conn:
            local_marker = None
            if marker is not None:
                assert marker_values is not None
                if cell_id == marker_cell:
                    local_marker = marker
                else:
                    stmt = (
                        select(c.uuid)
                        .where(c.deleted == 0, after_position(self.spec, c, marker_values))
                        .order_by(*self.order)
                        .limit(1)
                    )
                    found = await self._run(conn, stmt, cell_id)
                    if not found:
                        return  # everything here sorts before the marker
                    local_marker = found[0]["uuid"]
                    prefix = (
                        select(*self.columns)
                        .where(*base, c.uuid == local_marker)
                        .order_by(*self.order)
                        .limit(1)
                    )
                    for row in await self._run(conn, prefix, cell_id):
                        yield _RecordWrapper(self.ctx, row)
            return_count = 0
            while return_count < limit:
                size = min(batch, limit - return_count)
                conditions = list(base)
                if local_marker is not None:
                    # paginate_query needs the marker *row*: Nova reads it per batch.
                    mrow = await self._marker_row(conn, local_marker, cell_id)
                    if mrow is None:
                        return
                    conditions.append(after_position(self.spec, c, self.spec.position_of(mrow)))
                stmt = select(*self.columns).where(*conditions).order_by(*self.order).limit(size)
                batch_count = 0
                for row in await self._run(conn, stmt, cell_id):
                    local_marker = row["uuid"]
                    batch_count += 1
                    yield _RecordWrapper(self.ctx, row)
                if not batch_count:
                    break
                return_count += batch_count

    async def page(
        self, filters: InstanceFilters, limit: int, marker: str | None
    ) -> tuple[list[Any], bool]:
        marker_cell = marker_values = None
        if marker is not None:
            m = instance_mappings.c
            async with self.api.connect() as conn:
                mapping = (
                    await conn.execute(select(m.cell_id).where(m.instance_uuid == marker))
                ).first()
                self.stats.queries += 1
            if mapping is None:
                raise LookupError(marker)
            marker_cell = int(mapping.cell_id)
            engine = dict(self.cells)[marker_cell]
            async with engine.connect() as conn:
                row = await self._marker_row(conn, marker, marker_cell)
            marker_values = self.spec.position_of(row)
        batch = nova_batch_size(limit, len(self.cells))
        gens = [
            self._cell(cid, eng, filters, limit, batch, marker, marker_cell, marker_values)
            for cid, eng in self.cells
        ]
        out: list[Any] = []
        seen: set[str] = set()
        merged = _amerge(gens)
        try:
            async for item in merged:
                uuid = item.rec["uuid"]
                if uuid not in seen:
                    seen.add(uuid)
                    out.append(item.rec)
                if len(out) >= limit:
                    break
        finally:
            await merged.aclose()
            for g in gens:
                await g.aclose()
        return out, len(out) == limit  # Nova's "next" rule: a full page


# --------------------------------------------------------------------------------------
# In-process phase: gateway list_page vs Nova-style, same engines, no HTTP
# --------------------------------------------------------------------------------------


def _store_settings(store: str, redis_url: str, prefix: str) -> dict[str, Any]:
    base: dict[str, Any] = {"redis_prefix": prefix}
    if store == "redis":
        base["redis_url"] = redis_url
    return base


async def run_inprocess(
    layout: Layout, profile: Profile, args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    common = dict(
        page_cache_ttl_s=0.0, cell_pool_size=2, cell_pool_max_overflow=2, log_level="WARNING"
    )
    s8 = Settings(
        api_database_url=layout.url(layout.api8),
        **common,
        **_store_settings(args.store, args.redis_url, f"{args.redis_prefix}-ip8"),
    )
    s1 = Settings(
        api_database_url=layout.url(layout.api1),
        **common,
        **_store_settings(args.store, args.redis_url, f"{args.redis_prefix}-ip1"),
    )
    out: dict[str, Any] = {"first": {}, "walk": {}, "same_rows": True}
    async with build_state(s8) as st8, build_state(s1) as st1:
        nova = NovaStyleLister(
            st8.api.engine, [(c.id, st8.targets[c.id].engine) for c in st8.cells]
        )
        version = (2, 1)

        def gateway(
            state: Any,
        ) -> Callable[[str, int, str | None], Awaitable[tuple[list[Any], bool]]]:
            async def page(who: str, limit: int, marker: str | None) -> tuple[list[Any], bool]:
                items = [("limit", str(limit))]
                if who == "admin":
                    items.append(("all_tenants", "1"))
                if marker:
                    items.append(("marker", marker))
                principal = PRINCIPALS[who]
                req = parse_list_request(items, principal, version, state.settings.max_limit)
                p = await list_page(state, principal, req, detail=True, version=version)
                return p.rows, p.has_more

            return page

        async def nova_page(who: str, limit: int, marker: str | None) -> tuple[list[Any], bool]:
            items = [("limit", str(limit))] + ([("all_tenants", "1")] if who == "admin" else [])
            req = parse_list_request(items, PRINCIPALS[who], version, 1000)
            return await nova.page(req.filters, limit, marker)

        systems: dict[str, Callable[[str, int, str | None], Awaitable[tuple[list[Any], bool]]]] = {
            "sharded": gateway(st8),
            "unsharded": gateway(st1),
            "nova": nova_page,
        }

        def counters() -> dict[str, float]:
            c = {}
            for key, st in (("sharded", st8), ("unsharded", st1)):
                c[f"{key}.q"] = sum(v for v in _registry_by(st, "cellgate_cell_queries_total"))
                c[f"{key}.r"] = sum(v for v in _registry_by(st, "cellgate_cell_rows_fetched_total"))
            c["nova.q"] = nova.stats.queries
            c["nova.r"] = nova.stats.rows_fetched
            return c

        names = list(systems)
        for who, limit in SCENARIOS:
            say(f"in-process first page: {who} limit {limit}")
            for name in names:
                for _ in range(profile.warmup):
                    await systems[name](who, limit, None)
            ids = {
                n: [str(r["uuid"]) for r in (await systems[n](who, limit, None))[0]] for n in names
            }
            if not ids["sharded"] == ids["unsharded"] == ids["nova"]:
                out["same_rows"] = False
                log.warning("in-process first pages differ (%s, %s)", who, limit)
            lat: dict[str, list[float]] = {n: [] for n in names}
            cpu: dict[str, list[float]] = {n: [] for n in names}
            c0 = counters()
            n_samples = profile.inproc_n[limit]
            cap = time.perf_counter() + profile.phase_cap_s
            for i in range(profile.inproc_n[limit]):
                if i >= 5 and time.perf_counter() > cap:
                    say(f"  time cap: {i} samples per system")
                    n_samples = i
                    break
                order = names if i % 2 == 0 else names[::-1]
                for name in order:
                    c, t = time.process_time(), time.perf_counter()
                    await systems[name](who, limit, None)
                    lat[name].append(time.perf_counter() - t)
                    cpu[name].append(time.process_time() - c)
            c1 = counters()
            out["first"][f"{who}/{limit}"] = {
                n: {
                    **summary_ms(lat[n]),
                    "cpu_ms": 1000 * statistics.fmean(cpu[n]),
                    "queries": (c1[f"{n}.q"] - c0[f"{n}.q"]) / n_samples,
                    "rows_fetched": (c1[f"{n}.r"] - c0[f"{n}.r"]) / n_samples,
                }
                for n in names
            }

        for who in ("admin",):
            say(f"in-process walks: {who}, {profile.walk_pages} pages of {profile.walk_limit}")
            walks: dict[str, list[list[float]]] = {n: [] for n in names}
            walk_ids: dict[str, list[str]] = {}
            c0 = counters()
            pages_done = {n: 0 for n in names}
            cap = time.perf_counter() + profile.phase_cap_s
            for rep in range(profile.inproc_walk_reps):
                if rep >= 1 and time.perf_counter() > cap:
                    say(f"  time cap: {rep} walk(s) per system")
                    break
                order = names if rep % 2 == 0 else names[::-1]
                for name in order:
                    marker: str | None = None
                    per_page: list[float] = []
                    got: list[str] = []
                    for _ in range(profile.walk_pages):
                        t = time.perf_counter()
                        rows, more = await systems[name](who, profile.walk_limit, marker)
                        per_page.append(time.perf_counter() - t)
                        got.extend(str(r["uuid"]) for r in rows)
                        if not rows or not more:
                            break
                        marker = str(rows[-1]["uuid"])
                    walks[name].append(per_page)
                    pages_done[name] += len(per_page)
                    walk_ids.setdefault(name, got)
            c1 = counters()
            if not walk_ids["sharded"] == walk_ids["unsharded"] == walk_ids["nova"]:
                out["same_rows"] = False
                log.warning("in-process walks differ")
            out["walk"][who] = {
                n: {
                    "total_ms": statistics.median(sum(w) * 1000 for w in walks[n]),
                    "per_page_ms": [
                        statistics.median(w[i] * 1000 for w in walks[n])
                        for i in range(min(len(w) for w in walks[n]))
                    ],
                    "pages": min(len(w) for w in walks[n]),
                    "rows": len(walk_ids[n]),
                    "queries_per_page": (c1[f"{n}.q"] - c0[f"{n}.q"]) / max(1, pages_done[n]),
                    "rows_fetched_per_page": (c1[f"{n}.r"] - c0[f"{n}.r"]) / max(1, pages_done[n]),
                }
                for n in names
            }
        if profile.profile_s > 0 and not args.no_profile:
            out["profile"] = {}
            for limit in LIMITS:
                say(f"py-spy: in-process sharded list_page, admin limit {limit}")

                async def page(limit: int = limit) -> None:
                    await systems["sharded"]("admin", limit, None)

                out["profile"][limit] = await profile_inprocess(
                    page, profile.profile_s * 0.6, workdir, f"inprocess-sharded-{limit}"
                )
    return out


def _registry_by(state: Any, name: str) -> list[float]:
    return [
        s.value
        for family in state.metrics.registry.collect()
        for s in family.samples
        if s.name == name
    ]


# --------------------------------------------------------------------------------------
# OFFSET vs keyset on the unsharded cell
# --------------------------------------------------------------------------------------


async def run_offset(layout: Layout, profile: Profile) -> dict[str, Any]:
    engine = create_engine_for(
        layout.url(layout.cells1[0]),
        EngineOptions(pool_size=1, max_overflow=0, command_timeout_s=60.0),
    )
    spec = SortSpec.build([("created_at", Direction.DESC)])
    c = instances.c
    base = where_clauses(InstanceFilters())
    order = order_by(spec, c)
    cols = list(c)
    results: dict[str, Any] = {"rows": 0, "points": [], "same_rows": True}
    try:
        async with engine.connect() as conn:
            total = int((await conn.execute(select(func.count()).where(*base))).scalar_one())
            results["rows"] = total

            async def timed(stmt: Any) -> tuple[float, list[str]]:
                t = time.perf_counter()
                rows = (await conn.execute(stmt)).mappings().all()
                return time.perf_counter() - t, [r["uuid"] for r in rows]

            for limit in LIMITS:
                depths = [d for d in profile.offset_depths if d + limit <= total]
                deepest = (total - limit) // 1000 * 1000
                if deepest > (depths[-1] if depths else -1):
                    depths.append(deepest)
                say(f"OFFSET vs keyset, limit {limit}, depths {depths}")
                for depth in depths:
                    offset_stmt = select(*cols).where(*base).order_by(*order).limit(limit)
                    offset_stmt = offset_stmt.offset(depth)
                    keyset_stmt = select(*cols).where(*base).order_by(*order).limit(limit)
                    if depth > 0:
                        pos_row = (
                            await conn.execute(
                                select(c.created_at, c.uuid)
                                .where(*base)
                                .order_by(*order)
                                .offset(depth - 1)
                                .limit(1)
                            )
                        ).one()
                        keyset_stmt = keyset_stmt.where(after_position(spec, c, tuple(pos_row)))
                    _, a = await timed(offset_stmt)
                    _, b = await timed(keyset_stmt)
                    if a != b:
                        results["same_rows"] = False
                    off, key = [], []
                    for _ in range(profile.offset_reps):
                        off.append((await timed(offset_stmt))[0])
                        key.append((await timed(keyset_stmt))[0])
                    results["points"].append(
                        {
                            "limit": limit,
                            "depth": depth,
                            "offset_ms": statistics.median(off) * 1000,
                            "keyset_ms": statistics.median(key) * 1000,
                        }
                    )
    finally:
        await engine.dispose()
    return results


# --------------------------------------------------------------------------------------
# HTTP phases
# --------------------------------------------------------------------------------------


async def http_first_pages(servers: dict[str, Server], profile: Profile) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = list(servers)
    conns = {n: HttpConn("127.0.0.1", s.port) for n, s in servers.items()}
    try:
        for who, limit in SCENARIOS:
            say(f"HTTP first page: {who} limit {limit} ({profile.http_n[limit]} per server)")
            target, token = first_target(who, limit), TOKENS[who]
            errors = {n: 0 for n in names}
            bodies: dict[str, bytes] = {}
            for n in names:
                for _ in range(profile.warmup):
                    status, headers, bodies[n] = await conns[n].get(target, token)
                    if not ok_response(status, headers):
                        raise RuntimeError(f"{n}: {status} {bodies[n][:300]!r}")
            same = body_ids(bodies[names[0]]) == body_ids(bodies[names[1]])
            before = {n: await servers[n].metrics() for n in names}
            lat: dict[str, list[float]] = {n: [] for n in names}
            cap = time.perf_counter() + profile.phase_cap_s
            for i in range(profile.http_n[limit]):
                if i >= 5 and time.perf_counter() > cap:
                    say(f"  time cap: {i} samples per server")
                    break
                for n in names if i % 2 == 0 else names[::-1]:
                    t = time.perf_counter()
                    status, headers, _ = await conns[n].get(target, token)
                    elapsed = time.perf_counter() - t
                    if ok_response(status, headers):
                        lat[n].append(elapsed)
                    else:
                        errors[n] += 1
            after = {n: await servers[n].metrics() for n in names}
            out[f"{who}/{limit}"] = {
                n: {
                    **summary_ms(lat[n]),
                    "errors": errors[n],
                    "same_rows": same,
                    **cost_per_request(metric_delta(before[n], after[n]), len(lat[n]) + errors[n]),
                }
                for n in names
            }
    finally:
        for c in conns.values():
            c.close()
    return out


async def http_walk(
    conn: HttpConn, who: str, limit: int, pages: int, keep_ids: bool
) -> tuple[list[float], list[str]]:
    target: str | None = first_target(who, limit)
    per_page: list[float] = []
    ids: list[str] = []
    while target is not None and len(per_page) < pages:
        t = time.perf_counter()
        status, headers, body = await conn.get(target, TOKENS[who])
        per_page.append(time.perf_counter() - t)
        if not ok_response(status, headers):
            raise RuntimeError(f"walk page {len(per_page)}: {status} {body[:300]!r}")
        if keep_ids:
            ids.extend(body_ids(body))
        target = next_target(body)
    return per_page, ids


async def http_walks(servers: dict[str, Server], profile: Profile) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = list(servers)
    conns = {n: HttpConn("127.0.0.1", s.port) for n, s in servers.items()}
    try:
        for who in ("admin", "demo"):
            say(
                f"HTTP walks: {who}, {profile.walk_pages} pages of {profile.walk_limit}, "
                f"{profile.walk_reps} rep(s)"
            )
            for n in names:  # warm the deeper pages once
                await http_walk(conns[n], who, profile.walk_limit, profile.walk_pages, False)
            before = {n: await servers[n].metrics() for n in names}
            walks: dict[str, list[list[float]]] = {n: [] for n in names}
            ids: dict[str, list[str]] = {}
            cap = time.perf_counter() + profile.phase_cap_s
            for rep in range(profile.walk_reps):
                if rep >= 1 and time.perf_counter() > cap:
                    say(f"  time cap: {rep} walk(s) per server")
                    break
                for n in names if rep % 2 == 0 else names[::-1]:
                    per_page, got = await http_walk(
                        conns[n], who, profile.walk_limit, profile.walk_pages, rep == 0
                    )
                    walks[n].append(per_page)
                    if rep == 0:
                        ids[n] = got
            after = {n: await servers[n].metrics() for n in names}
            same = ids[names[0]] == ids[names[1]]
            out[who] = {}
            for n in names:
                pages = sum(len(w) for w in walks[n])
                cost = cost_per_request(metric_delta(before[n], after[n]), pages)
                out[who][n] = {
                    "total_ms": statistics.median(sum(w) * 1000 for w in walks[n]),
                    "per_page_ms": [
                        statistics.median(w[i] * 1000 for w in walks[n])
                        for i in range(min(len(w) for w in walks[n]))
                    ],
                    "pages": min(len(w) for w in walks[n]),
                    "rows": len(ids[n]),
                    "same_rows": same,
                    **cost,
                }
    finally:
        for c in conns.values():
            c.close()
    return out


async def load(
    server: Server,
    who: str,
    limit: int,
    clients: int,
    duration_s: float,
    warmup_s: float,
    pg_dbs: frozenset[str],
) -> dict[str, Any]:
    """``clients`` closed-loop clients for warmup + duration; counts the window only.

    Each request carries a distinct ``bench_nonce`` parameter (ignored by the API at 2.1) so
    identical concurrent requests are not coalesced into one fan-out.
    """
    counter = itertools.count()
    base = first_target(who, limit, "&bench_nonce=")
    token = TOKENS[who]
    t0 = time.perf_counter()
    w0, w1 = t0 + warmup_s, t0 + warmup_s + duration_s
    lat: list[float] = []
    errors = 0
    cpu: dict[str, float] = {}

    async def sample_cpu() -> None:
        await asyncio.sleep(max(0.0, w0 - time.perf_counter()))
        cpu.update(
            gw0=proc_cpu_s(server.pid),
            pg0=pg_backends_cpu_s(pg_dbs),
            me0=self_cpu_s(),
            all0=machine_busy_s(),
        )
        await asyncio.sleep(max(0.0, w1 - time.perf_counter()))
        cpu.update(
            gw1=proc_cpu_s(server.pid),
            pg1=pg_backends_cpu_s(pg_dbs),
            me1=self_cpu_s(),
            all1=machine_busy_s(),
        )

    async def client() -> None:
        nonlocal errors
        conn = HttpConn("127.0.0.1", server.port)
        try:
            while True:
                t = time.perf_counter()
                if t >= w1:
                    return
                try:
                    status, headers, _ = await conn.get(f"{base}{next(counter)}", token)
                except (OSError, asyncio.IncompleteReadError, TimeoutError):
                    conn.close()  # counted below; the next request reconnects
                    status, headers = 0, {}
                done = time.perf_counter()
                if w0 <= done < w1:
                    if ok_response(status, headers):
                        lat.append(done - t)
                    else:
                        errors += 1
        finally:
            conn.close()

    await asyncio.gather(sample_cpu(), *(client() for _ in range(clients)))
    n = max(1, len(lat))
    return {
        "rps": len(lat) / duration_s,
        "requests": len(lat),
        "errors": errors,
        **{k: v for k, v in summary_ms(lat).items() if k in ("p50", "p95")},
        "cpu_gateway_ms": 1000 * (cpu["gw1"] - cpu["gw0"]) / n,
        "cpu_pg_ms": 1000 * (cpu["pg1"] - cpu["pg0"]) / n,
        "cpu_client_ms": 1000 * (cpu["me1"] - cpu["me0"]) / n,
        # Cores busy with work that is not this benchmark's (other jobs on the machine).
        "other_cores": max(
            0.0,
            (cpu["all1"] - cpu["all0"])
            - (cpu["gw1"] - cpu["gw0"])
            - (cpu["pg1"] - cpu["pg0"])
            - (cpu["me1"] - cpu["me0"]),
        )
        / duration_s,
    }


async def exclusive(servers: dict[str, Server], name: str, clients: int) -> Server:
    """Run ``name`` alone: a loaded sharded gateway holds clients × cells connections, and
    PostgreSQL's max_connections is shared with everything else on this machine."""
    for other, server in servers.items():
        if other != name and server.running and connection_peak(clients) > 30:
            server.stop()
    server = servers[name]
    if not server.running:
        server.start()
        await server.wait_ready()
    return server


def connection_peak(clients: int) -> int:
    """Our PostgreSQL connections at most while one gateway is loaded: the sharded one holds
    one connection per cell per in-flight request, plus API-database ones, plus this process."""
    return clients * (8 + 1) + 2


async def plan_clients(layout: Layout, wanted: int) -> tuple[int, str]:
    conn = await _pg(layout)
    try:
        usable = int(await conn.fetchval("SHOW max_connections")) - int(
            await conn.fetchval("SHOW superuser_reserved_connections")
        )
        others = int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                "AND datname <> ALL($1::text[])",
                layout.all_dbs,
            )
        )
    finally:
        await conn.close()
    margin = 12  # room for other work on the shared server to grow meanwhile
    clients = wanted
    while clients > 1 and others + connection_peak(clients) + margin > usable:
        clients -= 1
    note = ""
    if clients != wanted:
        note = (
            f"concurrency lowered from {wanted} to {clients}: PostgreSQL allows {usable} "
            f"client connections and {others} were in use by other work"
        )
        say(f"WARNING: {note}")
    return clients, note


async def http_throughput(
    servers: dict[str, Server], profile: Profile, clients: int, pg_dbs: dict[str, frozenset[str]]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = list(servers)
    for i, (who, limit) in enumerate(SCENARIOS):
        out[f"{who}/{limit}"] = {}
        for n in names if i % 2 == 0 else names[::-1]:
            await exclusive(servers, n, clients)
            say(f"throughput: {n}, {who} limit {limit}, {clients} clients, {profile.tput_s:g} s")
            out[f"{who}/{limit}"][n] = await load(
                servers[n], who, limit, clients, profile.tput_s, profile.tput_warmup_s, pg_dbs[n]
            )
    return out


async def run_locust(server: Server, seconds: int, clients: int, workdir: Path) -> dict[str, Any]:
    if shutil.which("locust") is None and not _has_module("locust"):
        return {"skipped": "locust is not installed"}
    prefix = workdir / f"locust-{server.name}"
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(REPO / "scripts" / "locustfile.py"),
        "--headless",
        "-u",
        str(clients),
        "-r",
        str(clients),
        "-t",
        f"{seconds}s",
        "--host",
        server.url,
        "--csv",
        str(prefix),
        "--only-summary",
        "--stop-timeout",
        "5",
        "--exit-code-on-error",
        "0",
        "--loglevel",
        "WARNING",
    ]
    say(f"locust: {server.name}, {clients} users, {seconds} s")
    with open(workdir / f"locust-{server.name}.log", "wb") as logf:  # noqa: ASYNC230 - tiny
        proc = await asyncio.create_subprocess_exec(*cmd, cwd=REPO, stdout=logf, stderr=logf)
        try:
            async with asyncio.timeout(seconds + 60):
                await proc.wait()
        finally:
            if proc.returncode is None:
                proc.terminate()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(10):
                        await proc.wait()
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
    stats = Path(f"{prefix}_stats.csv")
    if not stats.is_file():  # noqa: ASYNC240 - a local stat, once
        return {"skipped": f"locust wrote no stats (exit {proc.returncode})"}
    import csv

    rows = list(csv.DictReader(stats.read_text().splitlines()))  # noqa: ASYNC240
    agg = next(r for r in rows if r["Name"] == "Aggregated")
    return {
        "rps": float(agg["Requests/s"]),
        "requests": int(agg["Request Count"]),
        "failures": int(agg["Failure Count"]),
        "p50": float(agg["50%"]),
        "p95": float(agg["95%"]),
        "by_name": {r["Name"]: float(r["Requests/s"]) for r in rows if r["Name"] != "Aggregated"},
    }


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


async def run_profile(
    server: Server, seconds: float, clients: int, workdir: Path, pg_dbs: frozenset[str]
) -> dict[str, Any]:
    """py-spy on the sharded server under the admin limit-100 load (not a measured run)."""
    pyspy = shutil.which("py-spy")
    if pyspy is None or seconds <= 0:
        return {"skipped": "py-spy not installed" if pyspy is None else "disabled"}
    raw = workdir / "pyspy-sharded-server.txt"
    say(f"py-spy: sharded server under admin limit-100 load, {seconds:g} s")
    proc = await asyncio.create_subprocess_exec(
        pyspy,
        "record",
        "-p",
        str(server.pid),
        "-d",
        str(int(seconds)),
        "-r",
        "200",
        "-f",
        "raw",
        "--threads",
        "-o",
        str(raw),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await load(server, "admin", 100, clients, seconds + 1, 0.5, pg_dbs)
        async with asyncio.timeout(30):
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if not raw.is_file():
        return {"skipped": f"py-spy wrote nothing (exit {proc.returncode})"}
    return summarize_pyspy(raw.read_text())


async def profile_inprocess(
    page: Callable[[], Awaitable[Any]], seconds: float, workdir: Path, name: str
) -> dict[str, Any]:
    """py-spy on this very process while ``page`` runs in a loop (the listing path alone)."""
    pyspy = shutil.which("py-spy")
    if pyspy is None or seconds <= 0:
        return {"skipped": "py-spy not installed" if pyspy is None else "disabled"}
    raw = workdir / f"pyspy-{name}.txt"
    proc = await asyncio.create_subprocess_exec(
        pyspy,
        "record",
        "-p",
        str(os.getpid()),
        "-d",
        str(int(seconds)),
        "-r",
        "250",
        "-f",
        "raw",
        "--threads",
        "-o",
        str(raw),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    pages = 0
    cpu0 = time.process_time()
    try:
        await asyncio.sleep(0.5)  # let py-spy attach
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline and proc.returncode is None:
            await page()
            pages += 1
        async with asyncio.timeout(30):
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if not raw.is_file():
        return {"skipped": f"py-spy wrote nothing (exit {proc.returncode})"}
    # Nothing else runs in this process meanwhile, so every main-thread sample is the listing
    # (list_page and the fetch tasks it gathers, which have their own stacks).
    out = summarize_pyspy(raw.read_text())
    out["pages"] = pages
    out["cpu_ms_per_page"] = 1000 * (time.process_time() - cpu0) / max(1, pages)
    return out


_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]+?)(?::\d+)?\)$")
_OURS = ("cells (ours)", "gateway (ours)", "cache (ours)")


def _area(path: str) -> str:
    head = path.split("/site-packages/")[-1].lstrip("/")
    for prefix, name in (
        ("cells/", "cells (ours)"),
        ("gateway/", "gateway (ours)"),
        ("cache/", "cache (ours)"),
        ("sqlalchemy/", "SQLAlchemy"),
        ("asyncpg/", "asyncpg"),
        ("uvicorn/", "uvicorn"),
        ("starlette/", "starlette/FastAPI"),
        ("fastapi/", "starlette/FastAPI"),
        ("pydantic", "pydantic"),
        ("prometheus_client/", "prometheus_client"),
        ("asyncio/", "asyncio (event loop, socket I/O)"),
        ("uvloop/", "asyncio (event loop, socket I/O)"),
        ("redis/", "redis"),
        ("anyio/", "anyio (threadpool)"),
    ):
        if head.startswith(prefix) or f"/{prefix}" in head:
            return name
    return "other (stdlib, C extensions' Python parts)"


def summarize_pyspy(
    text: str, thread: str = "MainThread", within: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Shares of ``thread``'s samples (optionally only stacks through a function named in
    ``within``): self time by area and by function, inclusive time of our functions."""
    total = 0
    other_threads = 0
    other_leaf: dict[str, int] = defaultdict(int)
    by_area: dict[str, int] = defaultdict(int)
    self_fn: dict[str, int] = defaultdict(int)
    incl_fn: dict[str, int] = defaultdict(int)
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames[0].startswith("thread ") or frames[0].startswith("process "):
            if thread not in frames[0]:
                other_threads += count
                leaf_other = _FRAME.match(frames[-1])
                if leaf_other:
                    other_leaf[f"{leaf_other['func']} ({_short(leaf_other['file'])})"] += count
                continue
            frames = frames[1:]
        parsed = [m for m in (_FRAME.match(f) for f in frames) if m]
        if within and not any(m["func"] in within for m in parsed):
            continue
        total += count
        if not parsed:
            continue
        leaf = parsed[-1]
        by_area[_area(leaf["file"])] += count
        self_fn[f"{leaf['func']} ({_short(leaf['file'])})"] += count
        seen = set()
        for m in parsed:
            if _area(m["file"]) not in _OURS or m["file"].endswith("gateway/cli.py"):
                continue
            name = f"{m['func']} ({_short(m['file'])})"
            if name not in seen:
                seen.add(name)
                incl_fn[name] += count

    def share(d: dict[str, int], n: int) -> list[tuple[str, float]]:
        return sorted(((k, v / total) for k, v in d.items()), key=lambda kv: -kv[1])[:n]

    return {
        "samples": total,
        "other_thread_samples": other_threads,
        "other_thread_top": sorted(other_leaf.items(), key=lambda kv: -kv[1])[:3],
        "by_area": share(by_area, 20) if total else [],
        "self": share(self_fn, 15) if total else [],
        "inclusive_ours": share(incl_fn, 18) if total else [],
    }


def _short(path: str) -> str:
    return path.split("/site-packages/")[-1].replace("/work/main/", "")


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def machine_info(layout: Layout) -> dict[str, str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"

    def version(mod: str) -> str:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as v

        try:
            return v(mod)
        except PackageNotFoundError:
            return "-"

    commit = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        if dirty:
            commit += " (with uncommitted changes)"
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": mem,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": ", ".join(
            f"{m} {version(m)}"
            for m in ("fastapi", "uvicorn", "uvloop", "sqlalchemy", "asyncpg", "orjson", "redis")
        ),
        "commit": commit,
    }


async def server_versions(layout: Layout, redis_url: str) -> dict[str, str]:
    out = {}
    conn = await _pg(layout)
    try:
        out["postgresql"] = str(await conn.fetchval("SHOW server_version"))
        shown = []
        for name in ("shared_buffers", "work_mem", "jit", "max_connections"):
            shown.append(f"{name}={await conn.fetchval(f'SHOW {name}')}")
        out["pg_settings"] = ", ".join(shown)
    finally:
        await conn.close()
    with contextlib.suppress(Exception):
        from redis.asyncio import Redis

        r = Redis.from_url(redis_url, socket_timeout=2)
        try:
            out["redis"] = str((await r.info("server"))["redis_version"])
        finally:
            await r.aclose()
    return out


def fmt(v: float, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:,.{digits}f}"


def fx(v: float) -> str:
    return "–" if math.isnan(v) else f"{v:.2f}×"


def build_ratios(r: dict[str, Any]) -> list[tuple[str, str, float, str]]:
    """(group, metric, ratio, values) rows of the summary table."""
    rows: list[tuple[str, str, float, str]] = []

    def add(group: str, metric: str, a: Any, b: Any, unit: str, digits: int = 1) -> None:
        rows.append((group, metric, ratio(a, b), f"{fmt(a, digits)} / {fmt(b, digits)} {unit}"))

    hs = "sharded ÷ unsharded, HTTP"
    http = r["http_first"]
    for who, limit in SCENARIOS:
        s, u = http[f"{who}/{limit}"]["sharded"], http[f"{who}/{limit}"]["unsharded"]
        for q in ("p50", "p95"):
            add(hs, f"first-page latency {q}, {who}, limit {limit}", s[q], u[q], "ms")
    throughput = {k: (t["sharded"], t["unsharded"]) for k, t in r["throughput"].items()}
    for who, limit in SCENARIOS:
        s, u = throughput[f"{who}/{limit}"]
        add(hs, f"throughput, {who}, limit {limit}", s["rps"], u["rps"], "req/s")
    for who, limit in SCENARIOS:
        s, u = throughput[f"{who}/{limit}"]
        metric = f"gateway CPU per request under load, {who}, limit {limit}"
        add(hs, metric, s["cpu_gateway_ms"], u["cpu_gateway_ms"], "ms", 2)
    walk_limit = r["profile"]["walk_limit"]
    for who, w in r["http_walk"].items():
        s, u = w["sharded"], w["unsharded"]
        add(hs, f"walk {s['pages']}×{walk_limit}, {who}", s["total_ms"], u["total_ms"], "ms", 0)
    loc = r.get("locust", {})
    if "rps" in loc.get("sharded", {}) and "rps" in loc.get("unsharded", {}):
        add(
            hs,
            "locust mixed workload throughput",
            loc["sharded"]["rps"],
            loc["unsharded"]["rps"],
            "req/s",
        )
    ip = r["inprocess"]
    gs = "sharded ÷ unsharded, in-process listing (no HTTP, no rendering)"
    ns = "Nova-style ÷ sharded gateway, in-process, 8 cells"
    for group, first, second in ((gs, "sharded", "unsharded"), (ns, "nova", "sharded")):
        for who, limit in SCENARIOS:
            a, b = ip["first"][f"{who}/{limit}"][first], ip["first"][f"{who}/{limit}"][second]
            add(group, f"first-page latency p50, {who}, limit {limit}", a["p50"], b["p50"], "ms")
            metric = f"first-page CPU (bench process), {who}, limit {limit}"
            add(group, metric, a["cpu_ms"], b["cpu_ms"], "ms", 2)
    for who, w in ip["walk"].items():
        n, g = w["nova"], w["sharded"]
        add(ns, f"walk {g['pages']}×{walk_limit}, {who}", n["total_ms"], g["total_ms"], "ms", 0)
    points = r["offset"]["points"]
    for limit in LIMITS:
        mine = [p for p in points if p["limit"] == limit and p["depth"] > 0]
        shown = [p for p in mine if p["depth"] in (10_000, 100_000)] + mine[-1:]
        for p in sorted({id(p): p for p in shown}.values(), key=lambda p: p["depth"]):
            metric = f"page at depth {p['depth']:,}, limit {p['limit']}"
            add(
                "OFFSET ÷ keyset, unsharded DB, SQL only",
                metric,
                p["offset_ms"],
                p["keyset_ms"],
                "ms",
            )
    return rows


def plots(r: dict[str, Any], outdir: Path) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir.mkdir(parents=True, exist_ok=True)
    made: list[tuple[str, str]] = []
    labels = [f"{who}\nlimit {limit}" for who, limit in SCENARIOS]
    colors = {"sharded": "#1f77b4", "unsharded": "#ff7f0e", "nova": "#2ca02c"}
    x = list(range(len(SCENARIOS)))

    def bars(
        ax: Any, series: dict[str, list[float]], upper: dict[str, list[float]] | None, ylabel: str
    ) -> None:
        width = 0.8 / len(series)
        for i, (name, values) in enumerate(series.items()):
            xs = [xi + (i - (len(series) - 1) / 2) * width for xi in x]
            yerr = None
            if upper:
                yerr = [
                    [0] * len(values),
                    [u - v for u, v in zip(upper[name], values, strict=True)],
                ]
            ax.bar(xs, values, width, label=name, color=colors.get(name), yerr=yerr, capsize=3)
        ax.set_xticks(x, labels)
        ax.set_ylabel(ylabel)
        ax.legend()
        ax.grid(axis="y", alpha=0.3)

    http = r["http_first"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    names = ["sharded", "unsharded"]
    bars(
        ax,
        {n: [http[f"{w}/{lim}"][n]["p50"] for w, lim in SCENARIOS] for n in names},
        {n: [http[f"{w}/{lim}"][n]["p95"] for w, lim in SCENARIOS] for n in names},
        "ms (bar p50, whisker p95)",
    )
    ax.set_title("First page, GET /v2.1/servers/detail over HTTP")
    fig.tight_layout()
    fig.savefig(outdir / "first_page_latency.png", dpi=110)
    plt.close(fig)
    made.append(("first_page_latency.png", "First-page latency, sharded vs unsharded (HTTP)"))

    t = r["throughput"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    bars(
        ax,
        {n: [t[f"{w}/{lim}"][n]["rps"] for w, lim in SCENARIOS] for n in names},
        None,
        "requests/s",
    )
    ax.set_title(f"Throughput, {r['clients']} closed-loop clients, first pages")
    fig.tight_layout()
    fig.savefig(outdir / "throughput.png", dpi=110)
    plt.close(fig)
    made.append(("throughput.png", "Throughput, sharded vs unsharded (HTTP)"))

    ip = r["inprocess"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    names3 = ["nova", "sharded", "unsharded"]
    bars(
        ax1,
        {n: [ip["first"][f"{w}/{lim}"][n]["p50"] for w, lim in SCENARIOS] for n in names3},
        {n: [ip["first"][f"{w}/{lim}"][n]["p95"] for w, lim in SCENARIOS] for n in names3},
        "ms (bar p50, whisker p95)",
    )
    ax1.set_title("In-process first page (no HTTP)")
    for n in names3:
        pp = ip["walk"]["admin"][n]["per_page_ms"]
        ax2.plot(range(1, len(pp) + 1), pp, marker="o", ms=3, label=n, color=colors[n])
    ax2.set_xlabel("page")
    ax2.set_ylabel("ms")
    ax2.set_title(f"In-process walk, admin, limit {r['profile']['walk_limit']}")
    ax2.grid(alpha=0.3)
    ax2.legend()
    fig.tight_layout()
    fig.savefig(outdir / "inprocess_nova.png", dpi=110)
    plt.close(fig)
    made.append(("inprocess_nova.png", "Nova-style vs gateway, in-process"))

    fig, axes = plt.subplots(1, len(r["http_walk"]), figsize=(12, 4.5), squeeze=False)
    for ax, (who, w) in zip(axes[0], r["http_walk"].items(), strict=True):
        for n in names:
            pp = w[n]["per_page_ms"]
            ax.plot(range(1, len(pp) + 1), pp, marker="o", ms=3, label=n, color=colors[n])
        ax.set_title(f"HTTP walk, {who}, limit {r['profile']['walk_limit']}")
        ax.set_xlabel("page")
        ax.set_ylabel("ms")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(outdir / "walk.png", dpi=110)
    plt.close(fig)
    made.append(("walk.png", "Per-page latency of a walk (HTTP)"))

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for limit, style in zip(LIMITS, ("-", "--"), strict=True):
        pts = [p for p in r["offset"]["points"] if p["limit"] == limit and p["depth"] > 0]
        depths = [p["depth"] for p in pts]
        ax.plot(
            depths,
            [p["offset_ms"] for p in pts],
            style,
            marker="o",
            color="#d62728",
            label=f"OFFSET, limit {limit}",
        )
        ax.plot(
            depths,
            [p["keyset_ms"] for p in pts],
            style,
            marker="s",
            color="#1f77b4",
            label=f"keyset, limit {limit}",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("depth (rows skipped)")
    ax.set_ylabel("ms per page (median)")
    ax.set_title("OFFSET vs keyset on the unsharded database")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(outdir / "offset_vs_keyset.png", dpi=110)
    plt.close(fig)
    made.append(("offset_vs_keyset.png", "OFFSET vs keyset latency by depth"))
    return made


NOTES_BEGIN = "<!-- notes:begin (kept when scripts/bench rewrites this file) -->"
NOTES_END = "<!-- notes:end -->"


def write_report(r: dict[str, Any], out: Path, plot_files: list[tuple[str, str]]) -> None:
    previous = out.read_text() if out.is_file() else ""
    notes = ""
    if NOTES_BEGIN in previous and NOTES_END in previous:
        notes = previous.split(NOTES_BEGIN, 1)[1].split(NOTES_END, 1)[0].strip("\n")
    d: DataInfo = r["data"]
    m = r["machine"]
    p = r["profile"]
    L: list[str] = []
    add = L.append
    add("# Benchmarks")
    add("")
    add(
        "Generated by `scripts/bench` (do not edit by hand, except between the notes markers "
        "at the end). All numbers below come from **one run** on one data set, so the ratios "
        "are comparable."
    )
    add("")
    add("## Run")
    add("")
    add(
        f"- **Command**: `{r['command']}` ({p['name']} profile), "
        f"finished {r['finished']} UTC, took {r['runtime_s'] / 60:.1f} min"
    )
    add(
        f"- **Machine**: {m['cpu']}, {m['memory']} RAM, {m['os']}; load average "
        f"{r['load_before']} before / {r['load_after']} after (other work shares this machine)"
    )
    add(
        f"- **Services**: PostgreSQL {r['servers'].get('postgresql', '?')} "
        f"({r['servers'].get('pg_settings', '')}), Redis {r['servers'].get('redis', '?')}, "
        "all on 127.0.0.1, same cores as the gateway and the load generator"
    )
    add(f"- **Software**: Python {m['python']}; {m['packages']}; commit {m['commit']}")
    per8 = ", ".join(f"{k} {v:,}" for k, v in d.per_cell8.items())
    add(
        f"- **Data**: {d.instances:,} instances from `SeedPlan(instances={d.instances}, "
        f"seed={d.seed})`, seeded twice: **sharded** = 8 cell databases ({per8}; the seed "
        "halves the share per cell and leaves the last cell empty), **unsharded** = 1 cell "
        f"database with all {d.per_cell1['cell1']:,}. Same instances in both (one random "
        "stream whatever the cell count; walks and first pages compared uuid by uuid: "
        f"{'identical' if r['same_rows'] else '**DIFFERENT**'}). Visible to an admin listing "
        f"(not deleted): {d.visible_admin:,}; to project `demo`: {d.visible_demo:,}. "
        f"Seeding{' (reused)' if d.reused else ''} took {d.seed_s:.0f} s."
    )
    add(
        f"- **Gateways**: `cellgate serve` (uvicorn, one worker) per data set, frontier cache "
        f"in **{r['store_desc']}**, `CELLGATE_PAGE_CACHE_TTL_S=0` (the identical-request "
        "page cache would otherwise answer repeated first pages without a fan-out), "
        f"`CELLGATE_CELL_POOL_SIZE={r['clients']}` (= the load's concurrency), per-project "
        "cells on. Requests: `GET /v2.1/servers/detail` at microversion 2.1, admin = "
        "`X-Auth-Token: admin:admin` + `all_tenants=1`, demo = `X-Auth-Token: demo:demo`."
    )
    add("")
    add("## Ratios")
    add("")
    add(
        "Below 1× means the first system is faster (latency, walk time) or slower "
        "(throughput: above 1× means more requests/s)."
    )
    add("")
    add("| comparison | metric | ratio | values |")
    add("| --- | --- | ---: | ---: |")
    for group, metric, value, how in build_ratios(r):
        add(f"| {group} | {metric} | **{fx(value)}** | {how} |")
    add("")
    for name, title in plot_files:
        add(f"![{title}](docs/bench/{name})")
        add("")

    add("## First pages over HTTP")
    add("")
    add(
        f"Sequential requests, one keep-alive connection per server, requests alternating "
        f"between the two servers; up to {p['http_n'][100]} samples per server at limit 100, "
        f"{p['http_n'][1000]} at limit 1000 (n: what a {p['phase_cap_s']:g} s cap per scenario "
        f"allowed), after {p['warmup']} warm-up requests. Cell "
        "queries and rows are per request, from the gateways' `/metrics` deltas."
    )
    add("")
    add(
        "| who | limit | system | n | p50 ms | p95 ms | mean ms | cells asked | cell queries "
        "| rows fetched | rows returned | errors |"
    )
    add("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for who, limit in SCENARIOS:
        for n in ("sharded", "unsharded"):
            s = r["http_first"][f"{who}/{limit}"][n]
            add(
                f"| {who} | {limit} | {n} | {s['n']} | {fmt(s['p50'])} | {fmt(s['p95'])} | "
                f"{fmt(s['mean'])} | {s['cells_asked']} | {fmt(s['queries'], 2)} | "
                f"{fmt(s['rows_fetched'], 0)} | {fmt(s['rows_returned'], 0)} | {s['errors']} |"
            )
    add("")
    add(
        "Per cell, sharded gateway (queries and rows per request, mean time of the cell's "
        "part of a request):"
    )
    add("")
    add("| who | limit | " + " | ".join(f"cell{i}" for i in range(1, 9)) + " |")
    add("| --- | ---: |" + " ---: |" * 8)
    for who, limit in SCENARIOS:
        pc = r["http_first"][f"{who}/{limit}"]["sharded"]["per_cell"]
        cells = []
        for i in range(1, 9):
            c = pc.get(f"cell{i}")
            cells.append(
                "–"
                if c is None
                else f"{c['queries']:.2f} q, {c['rows_fetched']:.0f} r, {fmt(c['ms'], 2)} ms"
            )
        add(f"| {who} | {limit} | " + " | ".join(cells) + " |")
    add("")

    add("## Walks over HTTP")
    add("")
    add(
        f"Following `servers_links` from the first page, {p['walk_pages']} pages at limit "
        f"{p['walk_limit']} (fewer if the listing ends), median of {p['walk_reps']} walk(s) "
        "per server after one warm-up walk; time is the sum of request latencies (client-side "
        "JSON parsing excluded)."
    )
    add("")
    add(
        "| who | system | pages | total ms | ms/page | cell queries/page | rows fetched/page "
        "| frontier hits / misses |"
    )
    add("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for who, w in r["http_walk"].items():
        for n in ("sharded", "unsharded"):
            s = w[n]
            add(
                f"| {who} | {n} | {s['pages']} | {fmt(s['total_ms'], 0)} | "
                f"{fmt(s['total_ms'] / max(1, s['pages']))} | {fmt(s['queries'], 2)} | "
                f"{fmt(s['rows_fetched'], 0)} | "
                f"{s['frontier_hit']:.0f} / {s['frontier_miss']:.0f} |"
            )
    add("")

    add("## Throughput over HTTP")
    add("")
    add(
        f"{r['clients']} closed-loop clients (one keep-alive connection each) for "
        f"{p['tput_s']:g} s after {p['tput_warmup_s']:g} s of warm-up, first pages only; each "
        "request carries a distinct ignored `bench_nonce` parameter so identical in-flight "
        "requests are not coalesced. CPU per request: the gateway process, the PostgreSQL "
        "backends serving it, and the load generator, all on the same 2 cores. Only the "
        "gateway under load runs (the other is stopped) so the sharded one's clients × cells "
        "connections fit PostgreSQL's shared max_connections."
    )
    add("")
    if r.get("clients_note"):
        add(f"**Note**: {r['clients_note']}.")
        add("")
    add(
        "| who | limit | system | req/s | p50 ms | p95 ms | errors | gateway CPU ms/req "
        "| PostgreSQL CPU ms/req | client CPU ms/req | other work (cores) |"
    )
    add("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for who, limit in SCENARIOS:
        for n in ("sharded", "unsharded"):
            s = r["throughput"][f"{who}/{limit}"][n]
            add(
                f"| {who} | {limit} | {n} | {fmt(s['rps'])} | {fmt(s['p50'])} | {fmt(s['p95'])} "
                f"| {s['errors']} | {fmt(s['cpu_gateway_ms'], 2)} | {fmt(s['cpu_pg_ms'], 2)} | "
                f"{fmt(s['cpu_client_ms'], 2)} | {fmt(s['other_cores'], 2)} |"
            )
    add("")
    loc = r.get("locust", {})
    if loc:
        add(
            f"Locust cross-check (`locust -f scripts/locustfile.py --headless -u {r['clients']} "
            f"-r {r['clients']} -t {p['locust_s']}s`, its mixed workload: see the locustfile):"
        )
        add("")
        for n, s in loc.items():
            if "rps" in s:
                add(
                    f"- {n}: {fmt(s['rps'])} req/s, p50 {fmt(s['p50'], 0)} ms, "
                    f"p95 {fmt(s['p95'], 0)} ms, {s['failures']} failures of {s['requests']}"
                )
            else:
                add(f"- {n}: skipped ({s.get('skipped', '?')})")
        add("")

    add("## Nova-style baseline (in-process)")
    add("")
    add(
        "Measured inside the bench process, without HTTP or rendering, on the sharded data "
        "set: the Nova-style lister vs the gateway's own `list_page` (the whole listing path: "
        "scope, frontier cache, marker, fan-out, merge), both on the gateway's engines "
        "(asyncpg through SQLAlchemy, autocommit, generic plans), so the comparison isolates "
        "the strategy (the in-process gateway uses its own small pools and the same store "
        "kind). Nova-style = per-cell batches of `max(min(int(limit/k*1.1), limit), "
        "100)` rows (k = 8: 100 rows at limit 100, 137 at limit 1000), run serially (each "
        "cell's lazy generator primed in turn by the heap merge, refills inline), marker "
        "re-resolved on every page (API-DB mapping, marker row, a local-marker query plus a "
        "prefix query in each other cell, and the marker row re-read before each batch), "
        "merged with a `RecordWrapper.__lt__`/`compare_records` cmp-style comparison, a cell "
        "stopping only on an empty batch. It uses cellgate's keyset SQL (sargable bound "
        "included), not oslo.db's `paginate_query`, and builds no Instance objects, so it "
        "flatters Nova. The unsharded gateway is listed for reference. Samples alternate "
        f"between systems; up to {p['inproc_n'][100]} per system at limit 100, "
        f"{p['inproc_n'][1000]} at limit 1000 (n below)."
    )
    add("")
    add(
        "| who | limit | system | n | p50 ms | p95 ms | CPU ms/page | queries/page "
        "| rows fetched/page |"
    )
    add("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for who, limit in SCENARIOS:
        for n in ("nova", "sharded", "unsharded"):
            s = r["inprocess"]["first"][f"{who}/{limit}"][n]
            add(
                f"| {who} | {limit} | {n} | {s['n']} | {fmt(s['p50'])} | {fmt(s['p95'])} | "
                f"{fmt(s['cpu_ms'], 2)} | {fmt(s['queries'], 1)} | {fmt(s['rows_fetched'], 0)} |"
            )
    add("")
    for who, w in r["inprocess"]["walk"].items():
        add(f"Walk, {who}, limit {p['walk_limit']} (median of {p['inproc_walk_reps']}):")
        add("")
        add("| system | pages | rows | total ms | queries/page | rows fetched/page |")
        add("| --- | ---: | ---: | ---: | ---: | ---: |")
        for n in ("nova", "sharded", "unsharded"):
            s = w[n]
            add(
                f"| {n} | {s['pages']} | {s['rows']:,} | {fmt(s['total_ms'], 0)} | "
                f"{fmt(s['queries_per_page'], 1)} | {fmt(s['rows_fetched_per_page'], 0)} |"
            )
        add("")

    same_offset = "identical" if r["offset"]["same_rows"] else "**DIFFERENT**"
    add("## OFFSET vs keyset (unsharded database, SQL only)")
    add("")
    add(
        f"`SELECT <all columns> FROM instances WHERE <admin listing filters> ORDER BY "
        f"created_at DESC, uuid LIMIT n OFFSET m` vs the keyset query starting after the row "
        f"at depth m (same rows, checked: {same_offset}), "
        f"on the gateway's engine; median of {p['offset_reps']}. "
        f"{r['offset']['rows']:,} rows match."
    )
    add("")
    add("| limit | depth | OFFSET ms | keyset ms | ratio |")
    add("| ---: | ---: | ---: | ---: | ---: |")
    for pt in r["offset"]["points"]:
        add(
            f"| {pt['limit']} | {pt['depth']:,} | {fmt(pt['offset_ms'], 2)} | "
            f"{fmt(pt['keyset_ms'], 2)} | {fx(ratio(pt['offset_ms'], pt['keyset_ms']))} |"
        )
    add("")

    profiles: list[tuple[str, dict[str, Any]]] = []
    if r.get("pyspy", {}).get("samples"):
        profiles.append(
            (
                f"Sharded server under the admin limit-100 load ({p['profile_s']:g} s, "
                f"{r['clients']} clients, a separate unmeasured run), main thread",
                r["pyspy"],
            )
        )
    for limit, prof in (r["inprocess"].get("profile") or {}).items():
        if prof.get("samples"):
            profiles.append(
                (
                    f"In-process sharded `list_page`, admin, limit {limit}: {prof['pages']} pages, "
                    f"{prof['cpu_ms_per_page']:.2f} ms of CPU per page (the bench process)",
                    prof,
                )
            )
    if profiles:
        add("## Where the CPU goes (py-spy)")
        add("")
        add(
            "Shares of the main thread's non-idle samples (`py-spy record --threads -f raw`). "
            "The in-process profiles run nothing but the sharded `list_page` in a loop (scope, "
            "frontier, fan-out, merge; no HTTP, no rendering), so ms/page = share × the bench "
            "process's CPU per page."
        )
        add("")
    for title, prof in profiles:
        per_page = prof.get("cpu_ms_per_page")
        add(f"### {title}")
        add("")
        line = f"{prof['samples']:,} main-thread samples"
        if prof.get("other_thread_samples"):
            top = ", ".join(f"`{name}` {n:,}" for name, n in prof.get("other_thread_top", []))
            line += (
                f"; {prof['other_thread_samples']:,} more in other threads, not counted below "
                f"(their top leaves: {top})"
            )
        add(line + ".")
        add("")

        def table(
            head: str, items: list[tuple[str, float]], code: bool, per_page: float | None = per_page
        ) -> None:
            add(f"| {head} | share |" + (" ms/page |" if per_page else ""))
            add("| --- | ---: |" + (" ---: |" if per_page else ""))
            for name, share in items:
                label = f"`{name}`" if code else name
                add(
                    f"| {label} | {share:.1%} |"
                    + (f" {share * per_page:.2f} |" if per_page else "")
                )
            add("")

        table("self time by area", prof["by_area"], False)
        table("our functions, inclusive", prof["inclusive_ours"], True)
        table("hottest functions, self", prof["self"], True)

    warn = r.get("server_warnings", {})
    if any(warn.values()):
        add("## Gateway warnings logged during the run")
        add("")
        for name, counts in warn.items():
            for msg, n in sorted(counts.items(), key=lambda kv: -kv[1]):
                add(f"- {name}: {n}× `{msg}`")
        add("")

    add("## Notes")
    add("")
    add(NOTES_BEGIN)
    add(notes)
    add(NOTES_END)
    add("")
    out.write_text("\n".join(L))


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


async def cleanup_redis(redis_url: str, prefix: str) -> None:
    with contextlib.suppress(Exception):
        from redis.asyncio import Redis

        r = Redis.from_url(redis_url, socket_timeout=5)
        try:
            keys = [k async for k in r.scan_iter(match=f"{prefix}*", count=1000)]
            for i in range(0, len(keys), 500):
                await r.delete(*keys[i : i + 500])
        finally:
            await r.aclose()


async def main(args: argparse.Namespace) -> int:
    profile = QUICK if args.quick else FULL
    if args.instances:
        profile = Profile(**{**profile.__dict__, "instances": args.instances})
    if args.profile_seconds is not None:
        profile = Profile(**{**profile.__dict__, "profile_s": args.profile_seconds})
    layout = Layout(
        args.pg.rstrip("/"), args.db_prefix or ("cg_benchq" if args.quick else "cg_bench")
    )
    out_root = (
        Path(args.out)
        if args.out
        else (Path(tempfile.mkdtemp(prefix="cellgate-bench-quick-")) if args.quick else REPO)
    )
    workdir = Path(tempfile.mkdtemp(prefix="cellgate-bench-work-"))
    started = time.perf_counter()
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    say(f"profile {profile.name}, databases {layout.prefix}*, output {out_root}, logs {workdir}")
    results: dict[str, Any] = {
        "profile": {**profile.__dict__},
        "clients": args.clients or profile.clients,
        "command": "scripts/bench " + " ".join(sys.argv[1:]) if sys.argv[1:] else "scripts/bench",
        "store_desc": (
            f"Redis ({args.redis_url}, key prefix `{args.redis_prefix}`)"
            if args.store == "redis"
            else "the in-process store"
        ),
    }
    servers: dict[str, Server] = {}
    try:
        async with asyncio.timeout(profile.max_s):
            results["machine"] = machine_info(layout)
            results["servers"] = await server_versions(layout, args.redis_url)
            data = await prepare_data(layout, profile, args.seed, args.reuse)
            results["data"] = data
            say(f"data ready: 8 cells {data.per_cell8}, 1 cell {data.per_cell1}")
            gc.collect()
            results["inprocess"] = await run_inprocess(layout, profile, args, workdir)
            results["offset"] = await run_offset(layout, profile)

            clients, results["clients_note"] = await plan_clients(
                layout, args.clients or profile.clients
            )
            results["clients"] = clients
            env = {
                "CELLGATE_PAGE_CACHE_TTL_S": "0",
                "CELLGATE_LOG_LEVEL": "WARNING",
                "CELLGATE_AUTH_MODE": "noauth",
                "CELLGATE_PER_PROJECT_CELLS": "true",
                "CELLGATE_CELL_POOL_SIZE": str(clients),
                "CELLGATE_CELL_POOL_MAX_OVERFLOW": "0",
            }
            if args.store == "redis":
                env["CELLGATE_REDIS_URL"] = args.redis_url
            for name, api in (("sharded", layout.api8), ("unsharded", layout.api1)):
                servers[name] = Server(
                    name,
                    layout.url(api),
                    {**env, "CELLGATE_REDIS_PREFIX": f"{args.redis_prefix}-{name}"},
                    workdir,
                )
                servers[name].start()
            for s in servers.values():
                await s.wait_ready()
            say(
                f"servers up: sharded {servers['sharded'].url}, "
                f"unsharded {servers['unsharded'].url}"
            )
            pg_dbs = {
                "sharded": frozenset([layout.api8, *layout.cells8]),
                "unsharded": frozenset([layout.api1, *layout.cells1]),
            }
            results["http_first"] = await http_first_pages(servers, profile)
            results["http_walk"] = await http_walks(servers, profile)
            results["throughput"] = await http_throughput(servers, profile, clients, pg_dbs)
            if not args.no_locust:
                results["locust"] = {}
                for name in profile.locust_servers:
                    server = await exclusive(servers, name, clients)
                    results["locust"][name] = await run_locust(
                        server, profile.locust_s, clients, workdir
                    )
            if not args.no_profile:
                server = await exclusive(servers, "sharded", clients)
                results["pyspy"] = await run_profile(
                    server, profile.profile_s, clients, workdir, pg_dbs["sharded"]
                )
            for server in servers.values():
                server.stop()
            results["server_warnings"] = {
                name: server.warnings() for name, server in servers.items()
            }
    finally:
        for s in servers.values():
            s.stop()
        if not args.keep:
            say("dropping the bench databases")
            await asyncio.gather(
                *(drop_database(layout.url(db)) for db in layout.all_dbs), return_exceptions=True
            )
        if args.store == "redis":
            await cleanup_redis(args.redis_url, args.redis_prefix)

    results["same_rows"] = (
        results["inprocess"]["same_rows"]
        and all(w[n]["same_rows"] for w in results["http_walk"].values() for n in w)
        and all(s[n]["same_rows"] for s in results["http_first"].values() for n in s)
    )
    results["runtime_s"] = time.perf_counter() - started
    results["finished"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    results["load_before"] = load_before
    results["load_after"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    plot_files = plots(results, out_root / "docs" / "bench")
    report = out_root / "BENCHMARKS.md"
    write_report(results, report, plot_files)
    if args.json:
        dump = json.dumps(results, default=lambda o: o.__dict__, indent=1)
        Path(args.json).write_text(dump)  # noqa: ASYNC240 - at the very end
    say(f"wrote {report} and {len(plot_files)} plots in {out_root / 'docs' / 'bench'}")
    say(f"runtime {results['runtime_s']:.0f} s")
    print()
    for group, metric, value, how in build_ratios(results):
        print(f"  {fx(value):>8}  {group}: {metric}  ({how})")
    errors = sum(s[n]["errors"] for s in results["throughput"].values() for n in s)
    errors += sum(s[n]["errors"] for s in results["http_first"].values() for n in s)
    if errors or not results["same_rows"]:
        say(f"WARNING: {errors} failed requests; same rows: {results['same_rows']}")
        return 1
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small data, seconds (smoke run)")
    parser.add_argument("--keep", action="store_true", help="keep the bench databases")
    parser.add_argument(
        "--reuse", action="store_true", help="skip seeding when kept databases hold the same plan"
    )
    parser.add_argument("--instances", type=int, default=0, help="override the profile's size")
    parser.add_argument("--seed", type=int, default=42, help="SeedPlan seed")
    parser.add_argument(
        "--clients",
        type=int,
        default=0,
        help="concurrency of the load phases (default 8; 2 with --quick)",
    )
    parser.add_argument(
        "--store",
        choices=("memory", "redis"),
        default="memory",
        help="frontier store of the gateways (default: in-process, as "
        "Settings' default; redis: CELLGATE_REDIS_URL)",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--redis-prefix", default=f"cgbench{os.getpid()}")
    parser.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server (no database)",
    )
    parser.add_argument("--db-prefix", default="", help="bench database name prefix")
    parser.add_argument(
        "--out",
        help="directory for BENCHMARKS.md and docs/bench/ "
        "(default: the repo; a temporary directory with --quick)",
    )
    parser.add_argument("--json", help="also dump the raw results here")
    parser.add_argument("--no-locust", action="store_true")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profiles")
    parser.add_argument(
        "--profile-seconds", type=float, help="py-spy profile length (default 10; 0 with --quick)"
    )
    args = parser.parse_args(argv)
    for host in (urlsplit(args.pg).hostname, urlsplit(args.redis_url).hostname):
        if host not in ("127.0.0.1", "localhost"):
            parser.error("the bench only loads 127.0.0.1")
    return args


def run() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        loop = runner.get_loop()
        task: asyncio.Task[int] | None = None

        async def guarded() -> int:
            nonlocal task
            task = asyncio.current_task()
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
            return await main(args)

        code = runner.run(guarded())
    sys.exit(code)


if __name__ == "__main__":
    run()
