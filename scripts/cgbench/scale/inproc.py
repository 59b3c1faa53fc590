"""In-process measurements of the scale run (no HTTP): the gateway's ``list_page`` against
the Nova-style serial lister on the same cells, and what rendering a page costs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from cgbench.inprocess import PageFn, _gateway, _nova, walk_pages
from cgbench.novastyle import NovaStyleLister
from cgbench.profiles import PRINCIPALS
from cgbench.results import Latency
from cgbench.scale.data import DataSet
from gateway.lifespan import build_state
from gateway.listing import list_page
from gateway.policy import ADMIN_VIEW
from gateway.request import parse_list_request
from gateway.settings import Settings, StaticCell
from gateway.views import ViewContext, server_detail, server_summary

__all__ = ["Render", "Strategies", "render_cost", "strategies"]

VERSION = (2, 1)


def _settings(data: DataSet, cells: Sequence[StaticCell] = ()) -> Settings:
    return Settings(
        api_database_url=data.api_url,
        cells=list(cells),
        page_cache_ttl_s=0.0,
        coalesce_listings=False,
        cell_pool_size=4,
        log_level="WARNING",
    )


# The summary view's columns for the default order: both strategies read the same rows
# and columns, and neither reads side data, so only the strategy differs (the gateway's
# detail view adds a side-data round trip per cell that the Nova-style lister never makes).
SUMMARY_COLUMNS = ("uuid", "display_name", "created_at")


@dataclass(frozen=True)
class Strategies:
    """First page and a walk, Nova-style lister vs the gateway, on the same engines, both
    reading the summary view's columns of ``instances`` and no side data."""

    first_nova: Latency
    first_gateway: Latency
    walk_nova_ms: float
    walk_gateway_ms: float
    walk_pages: int
    same_rows: bool


async def _walk(page: PageFn, limit: int, pages: int) -> tuple[float, list[str]]:
    per_page, ids = await walk_pages(page, "admin", limit, pages)
    return sum(per_page) * 1000, ids


async def strategies(
    data: DataSet, limit: int, samples: int, walk_pages: int, cells: Sequence[StaticCell] = ()
) -> Strategies:
    """Alternating samples of an admin first page, then one ``walk_pages`` walk each (on
    ``cells`` when given: the data set's cells behind proxies)."""
    async with build_state(_settings(data, cells)) as state:
        nova_lister = NovaStyleLister(
            state.api.engine,
            [(c.id, state.clients[c.id].engine) for c in state.cells],
            SUMMARY_COLUMNS,
        )
        systems = {"nova": _nova(nova_lister), "gateway": _gateway(state, detail=False)}
        times: dict[str, list[float]] = {name: [] for name in systems}
        for i in range(samples + 2):  # two warm-up rounds
            for name, page in systems.items() if i % 2 else reversed(systems.items()):
                started = time.perf_counter()
                await page("admin", limit, None)
                if i >= 2:
                    times[name].append(time.perf_counter() - started)
        nova_ms, nova_ids = await _walk(systems["nova"], 1000, walk_pages)
        gateway_ms, gateway_ids = await _walk(systems["gateway"], 1000, walk_pages)
    return Strategies(
        Latency.of(times["nova"]),
        Latency.of(times["gateway"]),
        nova_ms,
        gateway_ms,
        walk_pages,
        nova_ids == gateway_ids,
    )


@dataclass(frozen=True)
class Render:
    """Rendering cost per server, and its share of a whole page's CPU in this process."""

    limit: int
    summary_us: float
    detail_us: float
    page_cpu_ms: float  # list_page (detail) + rendering + JSON, CPU of this process
    detail_share: float  # rendering + JSON ÷ page CPU


async def render_cost(data: DataSet, limit: int, reps: int) -> Render:
    """µs per server for the summary and detail views (dicts + ``orjson``), timed over the
    rows and side data of a real first page; and the share of the page's CPU they are."""
    principal = PRINCIPALS["admin"]
    items = [("limit", str(limit)), ("all_tenants", "1")]
    ctx = ViewContext("http://127.0.0.1:8774", None, VERSION, ADMIN_VIEW)
    async with build_state(_settings(data)) as state:
        grants = state.policy.listing(principal, detail=True)

        async def page_cpu() -> float:
            request = parse_list_request(items, principal, grants, VERSION, 1000)
            started = time.process_time()
            page = await list_page(state, principal, request, detail=True, version=VERSION)
            rendered = [
                server_detail(r, ctx, page.details.get(str(r["uuid"]))) for r in page.listing.rows
            ]
            orjson.dumps({"servers": rendered})
            return time.process_time() - started

        for _ in range(3):
            await page_cpu()
        cpu = sorted([await page_cpu() for _ in range(reps)])[reps // 2]
        request = parse_list_request(items, principal, grants, VERSION, 1000)
        page = await list_page(state, principal, request, detail=True, version=VERSION)
    rows, details = page.listing.rows, page.details

    def timed(render: str) -> float:
        best = float("inf")
        for _ in range(max(3, reps // 4)):
            started = time.process_time()
            for _ in range(10):
                if render == "summary":
                    orjson.dumps({"servers": [server_summary(r, ctx) for r in rows]})
                else:
                    body = [server_detail(r, ctx, details.get(str(r["uuid"]))) for r in rows]
                    orjson.dumps({"servers": body})
            best = min(best, (time.process_time() - started) / 10)
        return best

    summary_s, detail_s = timed("summary"), timed("detail")
    n = max(1, len(rows))
    return Render(limit, 1e6 * summary_s / n, 1e6 * detail_s / n, cpu * 1000, detail_s / cpu)
