"""/metrics tells the truth: scraped before and after a listing, a listing with a cell down,
and a Redis outage, each family moves by exactly what the requests did."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cells.seeding import cell_uuid
from gateway.settings import StaticCell
from tests.support.apps import app_client
from tests.support.cellsets import CellSet
from tests.support.liveserver import free_port
from tests.support.logs import JsonLines, captured_lines

pytestmark = pytest.mark.integration

ADMIN = {"X-Auth-Token": "admin:admin"}
LIST = "/v2.1/servers?all_tenants=1&limit=5"
Key = tuple[str, frozenset[tuple[str, str]]]


async def _scrape(client: httpx.AsyncClient) -> dict[Key, float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if not sample.name.endswith(("_created", "_bucket", "_sum"))
    }


def _deltas(before: dict[Key, float], after: dict[Key, float]) -> dict[str, float]:
    """Every sample that moved, as ``name{label=value,...}`` → change."""
    moved: dict[str, float] = {}
    for key, value in after.items():
        change = value - before.get(key, 0.0)
        if change:
            name, labels = key
            inside = ",".join(f"{k}={v}" for k, v in sorted(labels))
            moved[f"{name}{{{inside}}}"] = change
    return moved


def _only(moved: dict[str, float], prefix: str) -> dict[str, float]:
    return {k: v for k, v in moved.items() if k.startswith(prefix)}


@pytest.fixture
def outcomes() -> Iterator[JsonLines]:
    with captured_lines("gateway.listing") as lines:
        yield lines


def _prefix() -> str:
    return f"cg-metrics-{uuid.uuid4().hex[:12]}"


async def test_listing_and_routes(pg_cells: CellSet, redis_url: str) -> None:
    settings = pg_cells.settings(redis_url=redis_url, redis_prefix=_prefix())
    async with app_client(settings) as client:
        before = await _scrape(client)
        response = await client.get(LIST, headers=ADMIN)
        assert response.status_code == 200
        assert len(response.json()["servers"]) == 5
        missing = await client.get(f"/v2.1/servers/{uuid.uuid4()}", headers=ADMIN)
        assert missing.status_code == 404
        assert (await client.get("/no/such/path")).status_code == 404
        after = await _scrape(client)
    moved = _deltas(before, after)
    print(sorted(moved.items()))
    assert _only(moved, "cellgate_http_requests_total") == {
        "cellgate_http_requests_total{method=GET,route=/metrics,status=200}": 1,
        "cellgate_http_requests_total{method=GET,route=/v2.1/servers,status=200}": 1,
        # The template, never the raw path: one series however many ids are asked for.
        "cellgate_http_requests_total{method=GET,route=/v2.1/servers/{server_id},status=404}": 1,
        "cellgate_http_requests_total{method=GET,route=other,status=404}": 1,
    }
    assert _only(moved, "cellgate_http_request_duration_seconds_count") == {
        "cellgate_http_request_duration_seconds_count{route=/metrics}": 1,
        "cellgate_http_request_duration_seconds_count{route=/v2.1/servers}": 1,
        "cellgate_http_request_duration_seconds_count{route=/v2.1/servers/{server_id}}": 1,
        "cellgate_http_request_duration_seconds_count{route=other}": 1,
    }
    assert _only(moved, "cellgate_list_requests_total") == {
        "cellgate_list_requests_total{outcome=complete}": 1
    }
    assert _only(moved, "cellgate_rows_returned_total") == {"cellgate_rows_returned_total{}": 5}
    # The page cache (a miss, then a write) and the frontier (a write: more pages follow).
    assert _only(moved, "cellgate_redis_calls_total") == {
        "cellgate_redis_calls_total{op=get,result=ok}": 1,
        "cellgate_redis_calls_total{op=set,result=ok}": 2,
    }
    assert after[("cellgate_redis_breaker_state", frozenset())] == 0


async def test_listing_with_a_cell_down(pg_cells: CellSet, outcomes: JsonLines) -> None:
    live = [
        StaticCell(name=c.name, uuid=cell_uuid(c.name), database_url=c.url) for c in pg_cells.cells
    ]
    dead = StaticCell(
        name="deadcell",
        uuid="11111111-2222-3333-4444-555555555555",
        database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/nothing",
    )
    settings = pg_cells.settings(cells=[*live, dead], breaker_failures=2)
    async with app_client(settings) as client:
        before = await _scrape(client)
        response = await client.get(LIST, headers=ADMIN)
        assert response.status_code == 200
        assert response.headers["x-cells-unavailable"] == "deadcell"
        after = await _scrape(client)
    # Each cell's outcome is logged once, under the id the response carries.
    rid = response.headers["x-openstack-request-id"]
    seen = sorted((line["cell"], line["request_id"]) for line in outcomes.messages("cell outcome"))
    assert seen == [(c.name, rid) for c in [*live, dead]]
    moved = _deltas(before, after)
    print(sorted(moved.items()))
    assert _only(moved, "cellgate_list_requests_total") == {
        "cellgate_list_requests_total{outcome=partial}": 1
    }
    assert _only(moved, "cellgate_http_requests_total{method=GET,route=/v2.1/servers") == {
        "cellgate_http_requests_total{method=GET,route=/v2.1/servers,status=200}": 1
    }
    assert _only(moved, "cellgate_cell_outcomes_total{cell=deadcell") == {
        "cellgate_cell_outcomes_total{cell=deadcell,outcome=error}": 1
    }
    # Its second failure (the first was at start-up) opened its breaker.
    assert moved["cellgate_cell_breaker_state{cell=deadcell}"] == 2
    assert after[("cellgate_cells_unavailable_last", frozenset())] == 1


async def test_redis_outage(pg_cells: CellSet) -> None:
    # Nothing listens on a just-freed port: every call fails at once.
    settings = pg_cells.settings(
        redis_url=f"redis://127.0.0.1:{free_port()}/0", redis_prefix=_prefix(), redis_cooldown_s=60
    )
    async with app_client(settings) as client:
        before = await _scrape(client)
        first = await client.get(LIST, headers=ADMIN)
        middle = await _scrape(client)
        second = await client.get(LIST, headers=ADMIN)
        after = await _scrape(client)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()  # Redis is an accelerator, never needed
    moved = _deltas(before, middle)
    print(sorted(moved.items()))
    # Page cache get, frontier set, page cache set: three errors open the breaker.
    assert _only(moved, "cellgate_redis_calls_total") == {
        "cellgate_redis_calls_total{op=get,result=error}": 1,
        "cellgate_redis_calls_total{op=set,result=error}": 2,
    }
    assert before[("cellgate_redis_breaker_state", frozenset())] == 0
    assert middle[("cellgate_redis_breaker_state", frozenset())] == 2
    moved = _deltas(middle, after)
    print(sorted(moved.items()))
    # Open: the page cache's read is skipped, not made, and the page comes from the copy
    # this process kept of what Redis failed to store: nothing more is fetched or written.
    assert _only(moved, "cellgate_redis_calls_total") == {
        "cellgate_redis_calls_total{op=get,result=skipped}": 1,
    }
    assert _only(moved, "cellgate_page_cache_total") == {"cellgate_page_cache_total{result=hit}": 1}
    assert after[("cellgate_redis_breaker_state", frozenset())] == 2
    assert _only(moved, "cellgate_list_requests_total") == {
        "cellgate_list_requests_total{outcome=complete}": 1
    }
