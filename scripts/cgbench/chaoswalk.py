"""The chaos run's clients beside locust: walkers doing full marker walks, and a probe.

Each walker repeats: pick a scope (the administrator's all-tenants listing or one project),
``/servers`` or ``/servers/detail``, a limit in 50–500 and microversion 2.1 or 2.69, then
follow ``servers_links`` to the end. A 503 (which must carry ``Retry-After``) or a dropped
connection is retried from the walk's last marker (the same URL) until it answers 200, for
at most :data:`GIVE_UP_S`; any other status ends the walk. Finished walks are checked
against the oracle afterwards (:func:`cgbench.chaoscheck.check_walk`).

The probe asks for one row of the all-tenants listing every half second (a distinct
parameter each time, so the page cache never answers it): the first complete answer after
a fault ends is that fault's recovery time.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from cgbench.chaoscheck import Page
from cgbench.httpconn import HttpConn, next_target

__all__ = ["SCOPES", "Probe", "Sample", "Scope", "WalkRecord", "probe", "walker"]

GIVE_UP_S = 120.0
RETRY_S = 0.5
PROBE_EVERY_S = 0.5
LIMITS = (50, 500)


@dataclass(frozen=True)
class Scope:
    label: str
    token: str
    project: str | None  # None: every project
    query: str = ""


SCOPES = (
    Scope("admin", "admin:admin", None, "&all_tenants=1"),
    Scope("demo", "demo:demo", "demo"),
    Scope("proj-01", "u:proj-01", "proj-01"),
    Scope("proj-03", "u:proj-03", "proj-03"),
)


@dataclass(frozen=True)
class Sample:
    """One answer (or a dropped connection: status 0) as the clients saw it."""

    t_s: float
    status: int
    unavailable: tuple[str, ...] = ()
    retry_after: bool = False
    ms: float = 0.0


@dataclass
class WalkRecord:
    walker: int
    scope: Scope
    view: str
    version: str
    limit: int
    started_s: float
    ended_s: float = float("nan")
    pages: list[Page] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    abandoned: str | None = None  # why the walk did not reach its last page


def _unavailable(headers: dict[str, str]) -> tuple[str, ...]:
    raw = headers.get("x-cells-unavailable", "")
    return tuple(c.strip() for c in raw.split(",") if c.strip())


def _page(t_s: float, body: bytes, named: tuple[str, ...], with_stubs: bool) -> Page:
    servers = orjson.loads(body)["servers"]
    ids = tuple(str(s["id"]) for s in servers)
    # A stub has no name (Nova's down-cell stub: id, status UNKNOWN, links [+ tenant, created]).
    stubs = frozenset(str(s["id"]) for s in servers if "name" not in s)
    return Page(t_s, ids, stubs, frozenset(named), next_target(body) is None, with_stubs)


async def _walk(conn: HttpConn, w: WalkRecord, clock: Callable[[], float]) -> HttpConn:
    """Follow ``w``'s walk to its end, recording into ``w``; the connection to go on with."""
    version = {"OpenStack-API-Version": f"compute {w.version}"}
    target: str | None = f"/v2.1/servers{w.view}?limit={w.limit}{w.scope.query}"
    retrying_since: float | None = None
    while target is not None:
        t = clock()
        try:
            status, headers, body = await conn.get(target, w.scope.token, version)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
            conn.close()
            conn = HttpConn(conn.host, conn.port)
            status, headers, body = 0, {}, b""
        named = _unavailable(headers)
        w.samples.append(Sample(t, status, named, "retry-after" in headers, 1000 * (clock() - t)))
        if status == 200:
            retrying_since = None
            page = _page(clock(), body, named, w.version != "2.1")
            w.pages.append(page)
            target = None if page.last else next_target(body)
            continue
        if status not in (0, 503):
            w.abandoned = f"status {status}: {body[:200]!r}"
            return conn
        retrying_since = retrying_since if retrying_since is not None else t
        if clock() - retrying_since > GIVE_UP_S:
            w.abandoned = f"status {status} for {GIVE_UP_S:.0f} s"
            return conn
        await asyncio.sleep(RETRY_S)
    return conn


async def walker(
    index: int, port: int, seed: int, t0: float, stop: asyncio.Event
) -> list[WalkRecord]:
    """Walk until ``stop`` is set (the walk in progress is finished); every walk made."""
    rng = random.Random(seed * 1000 + index)
    conn = HttpConn("127.0.0.1", port)
    walks: list[WalkRecord] = []

    def clock() -> float:
        return time.monotonic() - t0

    try:
        while not stop.is_set():
            w = WalkRecord(
                walker=index,
                scope=rng.choice(SCOPES),
                view=rng.choice(("", "/detail")),
                version=rng.choice(("2.1", "2.1", "2.69")),
                limit=rng.randint(*LIMITS),
                started_s=clock(),
            )
            conn = await _walk(conn, w, clock)
            w.ended_s = clock()
            walks.append(w)
    finally:
        conn.close()
    return walks


@dataclass(frozen=True)
class Probe:
    t_s: float
    complete: bool
    status: int


async def probe(port: int, t0: float, stop: asyncio.Event) -> list[Probe]:
    """The all-tenants first page (one row) every :data:`PROBE_EVERY_S` until ``stop``."""
    conn = HttpConn("127.0.0.1", port)
    out: list[Probe] = []
    try:
        for n in itertools.count():
            if stop.is_set():
                break
            t = time.monotonic() - t0
            try:
                status, headers, _ = await conn.get(
                    f"/v2.1/servers?all_tenants=1&limit=1&chaos_probe={n}", "admin:admin"
                )
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
                conn.close()
                status, headers = 0, {}
            out.append(Probe(t, status == 200 and not _unavailable(headers), status))
            await asyncio.sleep(PROBE_EVERY_S)
    finally:
        conn.close()
    return out
