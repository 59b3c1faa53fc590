"""Full walks through HTTP, following ``servers_links``, against the independent oracle.

Every walk runs on every backend (4 PostgreSQL cells with an empty one, 4 MariaDB cells
likewise with names colliding under ``utf8_general_ci``, 3 SQLite cells)
and must equal :func:`oracle.expected_uuids` exactly: same rows, same order, no duplicates.
Along the way every page but the last must be full, the last must not be empty (an exact
multiple ends without a trailing empty page), and every next link must carry the original
parameters — repeats included, in order — with only ``marker`` replaced.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tests.support.apps import app_client
from tests.support.cellsets import CellSet
from tests.support.oracle import (
    BASE,
    Snapshot,
    Walk,
    expected_uuids,
    load_snapshot,
    query_from_params,
    walk,
)

pytestmark = pytest.mark.integration

ADMIN = "admin:admin"
DEMO = "demo:demo"
CIRROS = "0b1e3c3e-5f7b-4c55-8a8e-6a3f3b1f2d10"
GPU_FLAVOR = "8f2c6f1e-3b7a-4d52-9a51-2f0c4e7d9b13"
SERVERS = "/v2.1/servers"
DETAIL = "/v2.1/servers/detail"


@pytest.fixture(scope="session", params=["pg_cells", "mariadb_cells", "sqlite_cells"])
def cell_set(request: pytest.FixtureRequest) -> CellSet:
    """Each backend in turn."""
    found: CellSet = request.getfixturevalue(request.param)
    return found


@pytest.fixture(scope="session")
async def snapshot(cell_set: CellSet) -> Snapshot:
    return await load_snapshot(cell_set)


@pytest.fixture(scope="session")
async def client(cell_set: CellSet) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(cell_set.settings()) as http:
        yield http


@dataclass(frozen=True)
class Case:
    """One walk: who asks, what, at which page sizes (``None``: no ``limit`` parameter)."""

    id: str
    token: str
    params: tuple[tuple[str, str], ...]
    limits: tuple[int | None, ...]
    paths: tuple[str, ...] = (SERVERS,)
    # Backends where it selects nothing (Nova escapes "|" on MySQL: no alternation).
    empty_on: tuple[str, ...] = ()


ALL = (("all_tenants", "1"),)
CASES = [
    # Default order: created_at desc, with many cross-cell ties broken by uuid asc.
    Case("default-all-tenants", ADMIN, ALL, (None, 100), (SERVERS, DETAIL)),
    Case("default-demo", DEMO, (), (100,), (SERVERS, DETAIL)),
    Case("default-demo-small-name", DEMO, (("name", "^DB-"),), (1, 2), (SERVERS,)),
    Case("display-name-asc", DEMO, (("sort_key", "display_name"), ("sort_dir", "asc")), (7,)),
    Case(
        "display-name-asc-web",
        DEMO,
        (("sort_key", "display_name"), ("sort_dir", "asc"), ("name", "^web")),
        (2,),
        (DETAIL,),
    ),
    Case(
        "hostname-asc",
        ADMIN,
        (*ALL, ("sort_key", "hostname"), ("sort_dir", "asc")),
        (100,),
        (DETAIL,),
    ),
    Case(
        "hostname-default-dir",
        ADMIN,
        (*ALL, ("project_id", "proj-03"), ("sort_key", "hostname")),
        (7,),
    ),
    Case("uuid-desc", ADMIN, (*ALL, ("sort_key", "uuid"), ("sort_dir", "desc")), (1000, 100)),
    Case(
        "launched-at-asc",
        ADMIN,
        (*ALL, ("project_id", "proj-02"), ("sort_key", "launched_at"), ("sort_dir", "asc")),
        (7,),
    ),
    Case(
        "launched-at-desc",
        ADMIN,
        (*ALL, ("sort_key", "launched_at"), ("sort_dir", "desc")),
        (100,),
        (DETAIL,),
    ),
    Case(
        "launched-at-asc-page-1",
        ADMIN,
        (
            *ALL,
            ("sort_key", "launched_at"),
            ("sort_dir", "asc"),
            ("status", "BUILD"),
            ("name", "^[a-k]"),
        ),
        (1,),
    ),
    Case("task-state-asc", ADMIN, (*ALL, ("sort_key", "task_state"), ("sort_dir", "asc")), (100,)),
    Case(
        "task-state-asc-small",
        DEMO,
        (("sort_key", "task_state"), ("sort_dir", "asc"), ("status", "ERROR")),
        (1, 2),
    ),
    Case(
        "host-asc-created-desc",
        ADMIN,
        (
            *ALL,
            ("sort_key", "host"),
            ("sort_dir", "asc"),
            ("sort_key", "created_at"),
            ("sort_dir", "desc"),
        ),
        (100,),
        (SERVERS, DETAIL),
    ),
    Case(
        "fewer-dirs-than-keys",
        DEMO,
        (("sort_key", "display_name"), ("sort_key", "created_at"), ("sort_dir", "asc")),
        (100, 7),
    ),
    Case(
        "three-keys-two-dirs",
        ADMIN,
        (
            *ALL,
            ("sort_key", "task_state"),
            ("sort_dir", "asc"),
            ("sort_key", "launched_at"),
            ("sort_dir", "asc"),
            ("sort_key", "display_name"),
        ),
        (100,),
    ),
    # Filters.
    Case("status-active", DEMO, (("status", "ACTIVE"),), (100,), (SERVERS, DETAIL)),
    Case(
        "status-repeated",
        DEMO,
        (
            ("status", "SHUTOFF"),
            ("status", "ERROR"),
            ("sort_key", "display_name"),
            ("sort_key", "uuid"),
            ("sort_dir", "asc"),
            ("sort_dir", "desc"),
        ),
        (7,),
        (SERVERS, DETAIL),
    ),
    Case("name-regex", DEMO, (("name", "[0-9]{3}$"),), (7,)),
    Case("name-regex-unicode", ADMIN, (*ALL, ("name", "é|ñ|サ")), (7,), empty_on=("mysql",)),
    Case("name-regex-class", ADMIN, (*ALL, ("name", "[éñサ]")), (7,)),
    Case("name-regex-case", DEMO, (("name", "^DB"), ("sort_key", "display_name")), (3,)),
    Case(
        "display-name-collisions",
        ADMIN,
        (*ALL, ("name", "^w.b *$"), ("sort_key", "display_name"), ("sort_dir", "asc")),
        (1, 4),
        (SERVERS, DETAIL),
        empty_on=("postgresql", "sqlite"),  # only the MariaDB cells have these names
    ),
    Case(
        "host-collisions-desc",
        ADMIN,
        (*ALL, ("sort_key", "host"), ("sort_dir", "desc"), ("sort_key", "display_name")),
        (100,),
    ),
    Case("user-id", ADMIN, (*ALL, ("user_id", "alice")), (100,), (DETAIL,)),
    Case("image", DEMO, (("image", CIRROS),), (7,)),
    Case("flavor", DEMO, (("flavor", "3"),), (100,)),
    Case("flavor-uuid", ADMIN, (*ALL, ("flavor", GPU_FLAVOR)), (2,), (DETAIL,)),
    Case("project-id", ADMIN, (*ALL, ("project_id", "proj-01")), (100,), (SERVERS, DETAIL)),
    Case("tenant-id", ADMIN, (*ALL, ("tenant_id", "proj-05")), (7,)),
    Case("changes-since", DEMO, (("changes-since", "2024-09-01T00:00:00Z"),), (100, 7)),
    Case(
        "changes-since-admin-sorted",
        ADMIN,
        (
            *ALL,
            ("changes-since", "2024-06-15T12:00:00"),
            ("sort_key", "display_name"),
            ("sort_dir", "asc"),
        ),
        (100,),
    ),
    Case("deleted", ADMIN, (*ALL, ("deleted", "true")), (7,), (SERVERS, DETAIL)),
    Case(
        "deleted-one-project", ADMIN, (*ALL, ("deleted", "true"), ("project_id", "proj-04")), (1,)
    ),
]


def _check_pages(got: Walk, limit: int, total: int) -> None:
    """Full pages, then one non-empty last page (a single empty page if nothing matches)."""
    if total == 0:
        assert got.pages == [0]
        return
    assert len(got.pages) == math.ceil(total / limit), got.pages
    assert all(n == limit for n in got.pages[:-1]), got.pages
    assert 0 < got.pages[-1] <= limit


def _check_links(got: Walk, path: str, params: list[tuple[str, str]]) -> None:
    """Every next link: same path, same parameters in order, marker = that page's last."""
    ends = 0
    for href, size in zip(got.next_hrefs, got.pages, strict=False):
        ends += size
        parts = urlsplit(href)
        assert f"{parts.scheme}://{parts.netloc}" == BASE
        assert parts.path == path
        items = parse_qsl(parts.query, keep_blank_values=True)
        assert [item for item in items if item[0] != "marker"] == params
        assert [v for k, v in items if k == "marker"] == [got.uuids[ends - 1]]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
async def test_walk_equals_oracle(
    case: Case, cell_set: CellSet, snapshot: Snapshot, client: httpx.AsyncClient
) -> None:
    project = case.token.partition(":")[2]
    want = expected_uuids(snapshot, query_from_params(case.params, project, cell_set.backend))
    assert want or cell_set.backend in case.empty_on, "the case must select something"
    assert len(set(want)) == len(want)
    for limit in case.limits:
        params = [*case.params, *([("limit", str(limit))] if limit is not None else [])]
        for path in case.paths:
            got = await walk(client, path, params, case.token)
            assert len(got.uuids) == len(set(got.uuids)), "duplicates across pages"
            assert got.uuids == want, (path, limit)
            _check_pages(got, limit or 1000, len(want))
            _check_links(got, path, params)


async def test_exact_multiple_has_no_trailing_empty_page(
    cell_set: CellSet, snapshot: Snapshot, client: httpx.AsyncClient
) -> None:
    """A scope whose size is an exact multiple of the page size ends on a full page."""
    params = [("all_tenants", "1"), ("project_id", "proj-05")]
    want = expected_uuids(snapshot, query_from_params(params, "admin", cell_set.backend))
    n = len(want)
    divisors = [d for d in range(2, n) if n % d == 0] or [1]
    for limit in (n, divisors[0], n // divisors[0]):
        got = await walk(client, SERVERS, [*params, ("limit", str(limit))], ADMIN)
        assert got.uuids == want
        assert got.pages == [limit] * (n // limit), limit
        assert len(got.next_hrefs) == n // limit - 1


async def test_project_url_walk_keeps_project_in_links(
    cell_set: CellSet, snapshot: Snapshot, client: httpx.AsyncClient
) -> None:
    params = [("sort_key", "display_name"), ("sort_dir", "asc"), ("limit", "100")]
    want = expected_uuids(snapshot, query_from_params(params, "demo", cell_set.backend))
    path = "/v2.1/demo/servers/detail"
    got = await walk(client, path, params, DEMO)
    assert got.uuids == want
    _check_links(got, path, params)


async def test_repeated_params_survive_in_next_link(client: httpx.AsyncClient) -> None:
    params = [
        ("status", "ACTIVE"),
        ("status", "SHUTOFF"),
        ("sort_key", "display_name"),
        ("sort_key", "created_at"),
        ("sort_dir", "asc"),
        ("limit", "3"),
    ]
    response = await client.get(SERVERS, params=params, headers={"X-Auth-Token": DEMO})
    assert response.status_code == 200
    href = response.json()["servers_links"][0]["href"]
    items = parse_qsl(urlsplit(href).query, keep_blank_values=True)
    assert [v for k, v in items if k == "status"] == ["ACTIVE", "SHUTOFF"]
    assert [v for k, v in items if k == "sort_key"] == ["display_name", "created_at"]
    assert [v for k, v in items if k == "sort_dir"] == ["asc"]
    assert len([v for k, v in items if k == "marker"]) == 1
