"""In-process phase: the gateway's ``list_page`` (sharded, unsharded) vs the Nova-style
lister, on the same engines, without HTTP or rendering."""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol

from cgbench.console import say
from cgbench.novastyle import NovaStyleLister
from cgbench.profiles import (
    LIMITS,
    PRINCIPALS,
    SCENARIOS,
    FrontierStore,
    Layout,
    Profile,
    SystemName,
    Who,
    scenario_key,
)
from cgbench.pyspy import profile_inprocess
from cgbench.results import CpuProfile, InprocessResults, InprocFirst, InprocWalk, Latency, Skipped
from gateway.lifespan import build_state
from gateway.listing import list_page
from gateway.policy import Policy
from gateway.request import parse_list_request
from gateway.settings import Settings
from gateway.state import AppState

log = logging.getLogger(__name__)


class _Row(Protocol):
    """A listed row, as far as the phase reads it (``row["uuid"]``)."""

    def __getitem__(self, key: str, /) -> object: ...


PageRows = Sequence[_Row]
PageFn = Callable[[Who, int, str | None], Awaitable[tuple[PageRows, bool]]]
Counters = dict[SystemName, tuple[float, float]]  # cell queries, rows fetched (cumulative)

VERSION = (2, 1)


def _items(who: Who, limit: int, marker: str | None) -> list[tuple[str, str]]:
    items = [("limit", str(limit))]
    if who == "admin":
        items.append(("all_tenants", "1"))
    if marker:
        items.append(("marker", marker))
    return items


def _gateway(state: AppState, detail: bool = True) -> PageFn:
    async def page(who: Who, limit: int, marker: str | None) -> tuple[PageRows, bool]:
        principal = PRINCIPALS[who]
        items = _items(who, limit, marker)
        grants = state.policy.listing(principal, detail=detail)
        req = parse_list_request(items, principal, grants, VERSION, state.settings.max_limit)
        p = await list_page(state, principal, req, detail=detail, version=VERSION)
        return p.listing.rows, p.listing.has_more

    return page


def _nova(nova: NovaStyleLister) -> PageFn:
    policy = Policy()

    async def page(who: Who, limit: int, marker: str | None) -> tuple[PageRows, bool]:
        principal = PRINCIPALS[who]
        grants = policy.listing(principal, detail=True)
        req = parse_list_request(_items(who, limit, None), principal, grants, VERSION, 1000)
        return await nova.page(req.filters, limit, marker)

    return page


def _registry_sum(state: AppState, name: str) -> float:
    return sum(
        s.value
        for family in state.metrics.registry.collect()
        for s in family.samples
        if s.name == name
    )


def _settings(layout: Layout, api: str, store: FrontierStore, suffix: str) -> Settings:
    return Settings(
        api_database_url=layout.url(api),
        page_cache_ttl_s=0.0,
        coalesce_listings=False,
        cell_pool_size=2,
        cell_pool_max_overflow=2,
        log_level="WARNING",
        redis_prefix=f"{store.redis_prefix}-{suffix}",
        redis_url=store.url,
    )


async def _first_pages(
    systems: dict[SystemName, PageFn],
    counters: Callable[[], Counters],
    profile: Profile,
    who: Who,
    limit: int,
) -> tuple[dict[SystemName, InprocFirst], bool]:
    """First pages, samples alternating between systems; and whether their rows agree."""
    names = list(systems)
    say(f"in-process first page: {who} limit {limit}")
    for name in names:
        for _ in range(profile.warmup):
            await systems[name](who, limit, None)
    ids = {n: [str(r["uuid"]) for r in (await systems[n](who, limit, None))[0]] for n in names}
    same = ids["sharded"] == ids["unsharded"] == ids["nova"]
    lat: dict[SystemName, list[float]] = {n: [] for n in names}
    cpu: dict[SystemName, list[float]] = {n: [] for n in names}
    c0 = counters()
    n_samples = profile.inproc_n[limit]
    cap = time.perf_counter() + profile.phase_cap_s
    for i in range(profile.inproc_n[limit]):
        if i >= 5 and time.perf_counter() > cap:
            say(f"  time cap: {i} samples per system")
            n_samples = i
            break
        for name in names if i % 2 == 0 else names[::-1]:
            c, t = time.process_time(), time.perf_counter()
            await systems[name](who, limit, None)
            lat[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    c1 = counters()
    return {
        n: InprocFirst(
            latency=Latency.of(lat[n]),
            cpu_ms=1000 * statistics.fmean(cpu[n]),
            queries=(c1[n][0] - c0[n][0]) / n_samples,
            rows_fetched=(c1[n][1] - c0[n][1]) / n_samples,
        )
        for n in names
    }, same


async def walk_pages(
    page: PageFn, who: Who, limit: int, pages: int
) -> tuple[list[float], list[str]]:
    """Up to ``pages`` pages of ``who``'s listing, each after the last one's final row:
    seconds per page, and the ids in the order they came."""
    marker: str | None = None
    per_page: list[float] = []
    ids: list[str] = []
    for _ in range(pages):
        t = time.perf_counter()
        rows, more = await page(who, limit, marker)
        per_page.append(time.perf_counter() - t)
        ids.extend(str(r["uuid"]) for r in rows)
        if not rows or not more:
            break
        marker = str(rows[-1]["uuid"])
    return per_page, ids


async def _walks(
    systems: dict[SystemName, PageFn],
    counters: Callable[[], Counters],
    profile: Profile,
    who: Who,
) -> tuple[dict[SystemName, InprocWalk], bool]:
    """Walks of ``walk_pages`` pages, alternating systems; and whether their rows agree."""
    names = list(systems)
    say(f"in-process walks: {who}, {profile.walk_pages} pages of {profile.walk_limit}")
    walks: dict[SystemName, list[list[float]]] = {n: [] for n in names}
    walk_ids: dict[SystemName, list[str]] = {}
    c0 = counters()
    pages_done = {n: 0 for n in names}
    cap = time.perf_counter() + profile.phase_cap_s
    for rep in range(profile.inproc_walk_reps):
        if rep >= 1 and time.perf_counter() > cap:
            say(f"  time cap: {rep} walk(s) per system")
            break
        for name in names if rep % 2 == 0 else names[::-1]:
            per_page, got = await walk_pages(
                systems[name], who, profile.walk_limit, profile.walk_pages
            )
            walks[name].append(per_page)
            pages_done[name] += len(per_page)
            walk_ids.setdefault(name, got)
    c1 = counters()
    same = walk_ids["sharded"] == walk_ids["unsharded"] == walk_ids["nova"]
    return {
        n: InprocWalk(
            total_ms=statistics.median(sum(w) * 1000 for w in walks[n]),
            per_page_ms=[
                statistics.median(w[i] * 1000 for w in walks[n])
                for i in range(min(len(w) for w in walks[n]))
            ],
            pages=min(len(w) for w in walks[n]),
            rows=len(walk_ids[n]),
            queries_per_page=(c1[n][0] - c0[n][0]) / max(1, pages_done[n]),
            rows_fetched_per_page=(c1[n][1] - c0[n][1]) / max(1, pages_done[n]),
        )
        for n in names
    }, same


async def run_inprocess(
    layout: Layout, profile: Profile, store: FrontierStore, cpu_profiles: bool, workdir: Path
) -> InprocessResults:
    """First pages and an admin walk per system; py-spy profiles of the sharded listing
    when ``cpu_profiles`` and the profile has time for them."""
    s8 = _settings(layout, layout.api8, store, "ip8")
    s1 = _settings(layout, layout.api1, store, "ip1")
    first: dict[str, dict[SystemName, InprocFirst]] = {}
    walk: dict[Who, dict[SystemName, InprocWalk]] = {}
    same_rows = True
    profiles: dict[int, CpuProfile | Skipped] = {}
    async with build_state(s8) as st8, build_state(s1) as st1:
        nova = NovaStyleLister(
            st8.api.engine, [(c.id, st8.clients[c.id].engine) for c in st8.cells]
        )
        systems: dict[SystemName, PageFn] = {
            "sharded": _gateway(st8),
            "unsharded": _gateway(st1),
            "nova": _nova(nova),
        }

        def counters() -> Counters:
            q, r = "cellgate_cell_queries_total", "cellgate_cell_rows_fetched_total"
            return {
                "sharded": (_registry_sum(st8, q), _registry_sum(st8, r)),
                "unsharded": (_registry_sum(st1, q), _registry_sum(st1, r)),
                "nova": (nova.stats.queries, nova.stats.rows_fetched),
            }

        for who, limit in SCENARIOS:
            first[scenario_key(who, limit)], same = await _first_pages(
                systems, counters, profile, who, limit
            )
            if not same:
                same_rows = False
                log.warning("in-process first pages differ (%s, %s)", who, limit)
        walk["admin"], same = await _walks(systems, counters, profile, "admin")
        if not same:
            same_rows = False
            log.warning("in-process walks differ")
        if profile.profile_s > 0 and cpu_profiles:
            for limit in LIMITS:
                say(f"py-spy: in-process sharded list_page, admin limit {limit}")

                async def page(limit: int = limit) -> None:
                    await systems["sharded"]("admin", limit, None)

                profiles[limit] = await profile_inprocess(
                    page, profile.profile_s * 0.6, workdir, f"inprocess-sharded-{limit}"
                )
    return InprocessResults(first=first, walk=walk, same_rows=same_rows, profiles=profiles)
