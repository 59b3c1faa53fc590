"""The API's edges: limits, markers, sorting, policy, microversions, version documents.

Every error must be a Nova fault body (``{"<fault>": {"code": N, "message": ...}}``) and
nothing a client sends may produce a 5xx (a hypothesis test throws random query strings).
Most cases run on the SQLite cells; the marker cases run on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from cells.registry import async_url
from cells.schema import cell_metadata, instance_mappings, instances, tags
from tests.support.apps import app_client
from tests.support.cellsets import CellSet, drop_postgres, seed_postgres
from tests.support.oracle import (
    Snapshot,
    auth,
    expected_uuids,
    load_snapshot,
    query_from_params,
    with_query,
)

pytestmark = pytest.mark.integration

ADMIN = "admin:admin"
DEMO = "demo:demo"
OTHER = "carol:proj-01"
SERVERS = "/v2.1/servers"
DETAIL = "/v2.1/servers/detail"


@pytest.fixture(scope="session")
async def sqlite_client(sqlite_cells: CellSet) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(sqlite_cells.settings()) as http:
        yield http


@pytest.fixture(scope="session")
async def pg_client(pg_cells: CellSet) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(pg_cells.settings()) as http:
        yield http


@pytest.fixture(scope="session")
async def pg_snapshot(pg_cells: CellSet) -> Snapshot:
    return await load_snapshot(pg_cells)


async def get(
    client: httpx.AsyncClient,
    path: str,
    params: list[tuple[str, str]] | None = None,
    token: str | None = DEMO,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = {**(auth(token) if token is not None else {}), **(headers or {})}
    return await client.get(with_query(path, params or []), headers=sent)


def assert_fault(response: httpx.Response, status: int, contains: str = "") -> str:
    """A Nova fault body with ``status``; returns its message."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    fault = {
        400: "badRequest",
        401: "unauthorized",
        403: "forbidden",
        404: "itemNotFound",
        406: "computeFault",  # Nova's Fault names no 406
        414: "computeFault",
    }[status]
    assert list(body) == [fault], body
    assert body[fault]["code"] == status
    message = body[fault]["message"]
    assert isinstance(message, str)
    assert message
    assert contains in message, message
    return message


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [server["id"] for server in response.json()["servers"]]


# --- limit ---------------------------------------------------------------------------------


async def test_limit_zero_is_an_empty_list_without_links(sqlite_client: httpx.AsyncClient) -> None:
    for path in (SERVERS, DETAIL):
        response = await get(sqlite_client, path, [("limit", "0")])
        assert response.status_code == 200
        assert response.json() == {"servers": []}


@pytest.mark.parametrize("value", ["-1", "abc", "", "1.5", " 5", "0x10", "١٢"])
async def test_bad_limit_is_400(sqlite_client: httpx.AsyncClient, value: str) -> None:
    response = await get(sqlite_client, SERVERS, [("limit", value)])
    assert_fault(response, 400, "limit")


async def test_huge_limit_is_clamped(sqlite_client: httpx.AsyncClient) -> None:
    for value in (str(10**9), "9" * 40):
        response = await get(
            sqlite_client, SERVERS, [("all_tenants", "1"), ("limit", value)], ADMIN
        )
        assert len(ids(response)) == 1000
        assert response.json()["servers_links"][0]["rel"] == "next"


@pytest.mark.parametrize(
    "values", [["x", "2"], ["2", "x"], ["-1", "5"], ["5", ""]], ids=lambda v: "&".join(v)
)
async def test_every_repeat_of_limit_is_validated(
    sqlite_client: httpx.AsyncClient, values: list[str]
) -> None:
    response = await get(sqlite_client, SERVERS, [("limit", v) for v in values])
    assert_fault(response, 400, "limit")


async def test_the_last_limit_wins(sqlite_client: httpx.AsyncClient) -> None:
    assert len(ids(await get(sqlite_client, SERVERS, [("limit", "5"), ("limit", "2")]))) == 2
    assert len(ids(await get(sqlite_client, SERVERS, [("limit", "2"), ("limit", "5")]))) == 5


async def test_absurdly_long_limit_is_not_a_server_error(sqlite_client: httpx.AsyncClient) -> None:
    """Python refuses int() of more than 4300 digits; that must not escape as a 500."""
    response = await get(sqlite_client, SERVERS, [("limit", "1" * 5000)], ADMIN)
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:
        assert len(ids(response)) <= 1000


# --- marker (PostgreSQL) -------------------------------------------------------------------


def _first(snapshot: Snapshot, **wanted: object) -> str:
    row = next(row for row in snapshot.rows if all(row[k] == v for k, v in wanted.items()))
    return str(row["uuid"])


@pytest.mark.parametrize(
    "kind",
    ["deleted", "soft-delete"],
)
@pytest.mark.parametrize(
    "params",
    [
        [],
        [("sort_key", "display_name"), ("sort_dir", "asc")],
        [("sort_key", "launched_at"), ("sort_dir", "asc")],
    ],
    ids=["default", "display_name", "launched_at"],
)
async def test_deleted_marker_continues_after_its_position(
    pg_client: httpx.AsyncClient,
    pg_snapshot: Snapshot,
    kind: str,
    params: list[tuple[str, str]],
) -> None:
    if kind == "deleted":
        marker = next(
            str(r["uuid"])
            for r in pg_snapshot.rows
            if r["project_id"] == "demo" and r["deleted"] != 0
        )
    else:
        marker = _first(pg_snapshot, project_id="demo", vm_state="soft-delete", deleted=0)
    visible = expected_uuids(pg_snapshot, query_from_params(params, "demo"))
    assert marker not in visible
    want = expected_uuids(pg_snapshot, query_from_params(params, "demo"), after=marker)
    assert want
    response = await get(pg_client, SERVERS, [*params, ("limit", "50"), ("marker", marker)])
    assert ids(response) == want[:50]


@pytest.mark.parametrize(
    "marker", [str(uuid.UUID(int=12345, version=4)), "not-a-marker", "", "%", "'; drop table x"]
)
async def test_unknown_marker_is_400(pg_client: httpx.AsyncClient, marker: str) -> None:
    response = await get(pg_client, SERVERS, [("marker", marker)])
    assert_fault(response, 400, f"marker [{marker}] not found")


async def test_other_projects_marker_is_400_for_a_user(
    pg_client: httpx.AsyncClient, pg_snapshot: Snapshot
) -> None:
    marker = _first(pg_snapshot, project_id="proj-01", deleted=0)
    for path in (SERVERS, DETAIL):
        response = await get(pg_client, path, [("marker", marker)], DEMO)
        assert_fault(response, 400, f"marker [{marker}] not found")


async def test_admin_may_use_any_projects_marker(
    pg_client: httpx.AsyncClient, pg_snapshot: Snapshot
) -> None:
    marker = _first(pg_snapshot, project_id="demo", deleted=0, vm_state="active")
    for params in ([("all_tenants", "1")], [], [("all_tenants", "1"), ("project_id", "proj-02")]):
        want = expected_uuids(pg_snapshot, query_from_params(params, "admin"), after=marker)
        response = await get(pg_client, SERVERS, [*params, ("marker", marker)], ADMIN)
        assert ids(response) == want[:1000]


async def test_purged_marker_is_400(postgres: str) -> None:
    """The mapping survives but the row was purged from its cell: not found, not a 500."""
    cell_set = await seed_postgres("cg_purge", cells=3, instances=400, seed_value=5)
    try:
        snapshot = await load_snapshot(cell_set)
        victim = next(r for r in snapshot.rows if r["project_id"] == "demo" and r["deleted"] == 0)
        marker = str(victim["uuid"])
        api = create_async_engine(async_url(cell_set.api_url), poolclass=NullPool)
        try:
            async with api.connect() as conn:
                cell_id = (
                    await conn.execute(
                        select(instance_mappings.c.cell_id).where(
                            instance_mappings.c.instance_uuid == marker
                        )
                    )
                ).scalar_one()
        finally:
            await api.dispose()
        cell_url = cell_set.cells[cell_id - 1].url
        async with app_client(cell_set.settings()) as client:
            before = await get(client, SERVERS, [("marker", marker), ("limit", "5")])
            assert before.status_code == 200, before.text
            engine = create_async_engine(async_url(cell_url), poolclass=NullPool)
            try:
                async with engine.begin() as conn:
                    # A purge (nova-manage db purge) removes the side rows, then the instance.
                    await conn.execute(delete(tags).where(tags.c.resource_id == marker))
                    for table in cell_metadata.sorted_tables:
                        if "instance_uuid" in table.c:
                            await conn.execute(delete(table).where(table.c.instance_uuid == marker))
                    gone = await conn.execute(delete(instances).where(instances.c.uuid == marker))
                    assert gone.rowcount == 1
            finally:
                await engine.dispose()
            # Another order than before, so no cached page or frontier can answer.
            params = [("marker", marker), ("sort_key", "display_name"), ("limit", "5")]
            for path in (SERVERS, DETAIL):
                response = await get(client, path, params)
                assert_fault(response, 400, f"marker [{marker}] not found")
    finally:
        await drop_postgres(cell_set)


# --- sorting -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "contains"),
    [
        ([("sort_key", "display_name"), ("sort_dir", "up")], "sort direction"),
        (
            [("sort_key", "uuid"), ("sort_dir", "asc"), ("sort_dir", "desc")],
            "Sort direction size exceeds sort key size",
        ),
        ([("sort_key", "bogus")], "sort_key"),
        ([("sort_key", "")], "sort_key"),
    ],
)
async def test_bad_sort_is_400(
    sqlite_client: httpx.AsyncClient, params: list[tuple[str, str]], contains: str
) -> None:
    assert_fault(await get(sqlite_client, SERVERS, params), 400, contains)


async def test_sort_dir_without_sort_key_applies_to_the_default_key(
    sqlite_client: httpx.AsyncClient,
) -> None:
    """Nova defaults the key and the direction separately: ``created_at asc``."""
    alone = await get(sqlite_client, SERVERS, [("sort_dir", "asc"), ("limit", "50")])
    spelled = [("sort_key", "created_at"), ("sort_dir", "asc"), ("limit", "50")]
    assert ids(alone) == ids(await get(sqlite_client, SERVERS, spelled))
    assert ids(alone) != ids(await get(sqlite_client, SERVERS, [("limit", "50")]))


@pytest.mark.parametrize("key", ["host", "node"])
async def test_admin_only_sort_keys(sqlite_client: httpx.AsyncClient, key: str) -> None:
    assert_fault(await get(sqlite_client, SERVERS, [("sort_key", key)], DEMO), 403, key)
    response = await get(sqlite_client, SERVERS, [("sort_key", key), ("limit", "3")], ADMIN)
    assert response.status_code == 200


async def test_ignored_sort_key_below_275_rejected_from_275(
    sqlite_client: httpx.AsyncClient,
) -> None:
    # Below 2.75 the key is dropped with its direction; Nova then orders by
    # created_at desc, id desc, so only the created_at sequence equals the default's.
    params = [("sort_key", "vcpus"), ("sort_dir", "asc"), ("limit", "5")]
    default = await get(sqlite_client, DETAIL, [("limit", "5")])
    ignored = await get(sqlite_client, DETAIL, params)
    assert ignored.status_code == 200, ignored.text
    created = [s["created"] for s in ignored.json()["servers"]]
    assert created == [s["created"] for s in default.json()["servers"]]
    response = await get(
        sqlite_client, SERVERS, params, headers={"OpenStack-API-Version": "compute 2.75"}
    )
    assert_fault(response, 400, "sort_key")


# --- policy and auth -----------------------------------------------------------------------


async def test_all_tenants_needs_admin(sqlite_client: httpx.AsyncClient) -> None:
    for value in ("1", "", "true"):
        response = await get(sqlite_client, SERVERS, [("all_tenants", value)], DEMO)
        assert_fault(response, 403)
    assert_fault(await get(sqlite_client, SERVERS, [("all_tenants", "maybe")], ADMIN), 400)


@pytest.mark.parametrize("headers", [{}, {"X-Auth-Token": ""}, {"X-Auth-Token": ":"}])
async def test_missing_token_is_401(
    sqlite_client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for path in (SERVERS, DETAIL, "/v2.1/demo/servers"):
        assert_fault(await get(sqlite_client, path, token=None, headers=headers), 401)


async def test_project_scoped_url(sqlite_client: httpx.AsyncClient) -> None:
    plain = await get(sqlite_client, SERVERS, [("limit", "10")], DEMO)
    scoped = await get(sqlite_client, "/v2.1/demo/servers", [("limit", "10")], DEMO)
    assert ids(scoped) == ids(plain)
    link = scoped.json()["servers"][0]["links"][0]["href"]
    assert link.startswith("http://gateway.test/v2.1/demo/servers/")
    assert scoped.json()["servers_links"][0]["href"].startswith(
        "http://gateway.test/v2.1/demo/servers?"
    )
    detail = await get(sqlite_client, "/v2.1/demo/servers/detail", [("limit", "10")], DEMO)
    assert ids(detail) == ids(plain)
    for path in ("/v2.1/demo/servers", "/v2.1/demo/servers/detail"):
        assert_fault(await get(sqlite_client, path, token=OTHER), 400, "project_id")


# --- microversions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ({"OpenStack-API-Version": "compute 2.999"}, 406),
        ({"OpenStack-API-Version": "compute 3.0"}, 406),
        ({"OpenStack-API-Version": "compute 2.0"}, 406),
        ({"OpenStack-API-Version": "compute abc"}, 400),
        ({"OpenStack-API-Version": "compute 2."}, 400),
        ({"X-OpenStack-Nova-API-Version": "2.999"}, 406),
        ({"X-OpenStack-Nova-API-Version": "x.y"}, 400),
    ],
)
async def test_bad_microversion(
    sqlite_client: httpx.AsyncClient, header: dict[str, str], status: int
) -> None:
    assert_fault(await get(sqlite_client, SERVERS, headers=header), status)


async def test_microversion_is_echoed(sqlite_client: httpx.AsyncClient) -> None:
    response = await get(
        sqlite_client, SERVERS, [("limit", "1")], headers={"OpenStack-API-Version": "compute 2.60"}
    )
    assert response.status_code == 200
    assert response.headers["OpenStack-API-Version"] == "compute 2.60"
    assert response.headers["X-OpenStack-Nova-API-Version"] == "2.60"
    assert "OpenStack-API-Version" in response.headers["Vary"]


async def test_unknown_param_ignored_below_275_rejected_from_275(
    sqlite_client: httpx.AsyncClient,
) -> None:
    params = [("limit", "7"), ("flibbertigibbet", "1")]
    base = ids(await get(sqlite_client, SERVERS, [("limit", "7")]))
    for version in ("2.1", "2.74"):
        response = await get(
            sqlite_client, SERVERS, params, headers={"OpenStack-API-Version": f"compute {version}"}
        )
        assert ids(response) == base
    for version in ("2.75", "2.90", "latest"):
        response = await get(
            sqlite_client, SERVERS, params, headers={"OpenStack-API-Version": f"compute {version}"}
        )
        assert_fault(response, 400, "flibbertigibbet")


@pytest.mark.parametrize("name", ["_foo", "_", "metadata", "security_groups", "info_cache"])
async def test_underscore_and_joined_table_filters_are_400(
    sqlite_client: httpx.AsyncClient, name: str
) -> None:
    """An admin's "_x" or joined-table filter is a 400; a member's is cut with the
    filters the policy does not allow, as Nova checks them after that cut."""
    assert_fault(await get(sqlite_client, SERVERS, [(name, "1")], ADMIN), 400, name)
    plain = await get(sqlite_client, SERVERS, [], DEMO)
    cut = await get(sqlite_client, SERVERS, [(name, "1")], DEMO)
    assert cut.status_code == 200, cut.text
    assert cut.json()["servers"] == plain.json()["servers"]


async def test_bad_status(sqlite_client: httpx.AsyncClient) -> None:
    for version in ("2.38", "2.90"):
        response = await get(
            sqlite_client,
            SERVERS,
            [("status", "bogus")],
            headers={"OpenStack-API-Version": f"compute {version}"},
        )
        assert_fault(response, 400, "Invalid status value")
    for version in ("2.1", "2.37"):
        response = await get(
            sqlite_client,
            DETAIL,
            [("status", "bogus")],
            headers={"OpenStack-API-Version": f"compute {version}"},
        )
        assert response.status_code == 200
        assert response.json() == {"servers": []}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("changes-since", "yesterday"),
        ("changes-before", "2024-13-01"),
        ("name", "("),
        ("name", "[a-"),
        ("locked", "perhaps"),
    ],
)
async def test_bad_filter_values_are_400(
    sqlite_client: httpx.AsyncClient, name: str, value: str
) -> None:
    headers = {"OpenStack-API-Version": "compute 2.90"}
    assert_fault(await get(sqlite_client, SERVERS, [(name, value)], ADMIN, headers), 400)


async def test_changes_before_earlier_than_since_is_400(sqlite_client: httpx.AsyncClient) -> None:
    params = [("changes-since", "2024-06-01T00:00:00Z"), ("changes-before", "2024-05-01T00:00:00Z")]
    headers = {"OpenStack-API-Version": "compute 2.66"}
    assert_fault(await get(sqlite_client, SERVERS, params, DEMO, headers), 400, "changes-since")


# --- version documents ---------------------------------------------------------------------


async def test_version_documents_are_public(sqlite_client: httpx.AsyncClient) -> None:
    root = await sqlite_client.get("/")
    assert root.status_code == 200
    (v21,) = root.json()["versions"]
    for document in (
        v21,
        *[(await sqlite_client.get(p)).json()["version"] for p in ("/v2.1", "/v2.1/")],
    ):
        assert document["id"] == "v2.1"
        assert document["min_version"] == "2.1"
        major, minor = (int(part) for part in document["version"].split("."))
        assert (major, minor) >= (2, 75)
        assert document["status"] == "CURRENT"
        selves = [link for link in document["links"] if link["rel"] == "self"]
        assert selves
        assert selves[0]["href"] == "http://gateway.test/v2.1/"
    latest = await get(
        sqlite_client,
        SERVERS,
        [("limit", "1")],
        headers={"OpenStack-API-Version": "compute latest"},
    )
    assert latest.headers["OpenStack-API-Version"] == f"compute {v21['version']}"


async def test_unknown_path_is_a_json_404(sqlite_client: httpx.AsyncClient) -> None:
    assert_fault(await get(sqlite_client, "/v2.1/flavors/nope/extra"), 404)


# --- never a server error ------------------------------------------------------------------

KNOWN = [
    "limit", "marker", "sort_key", "sort_dir", "all_tenants", "project_id", "tenant_id",
    "status", "name", "display_name", "image", "image_ref", "flavor", "user_id", "host",
    "node", "hostname", "availability_zone", "changes-since", "changes-before", "deleted",
    "locked", "uuid", "tags", "tags-any", "not-tags", "not-tags-any", "vm_state",
    "task_state", "power_state", "key_name", "config_drive", "ip", "ip6", "description",
    "soft_deleted", "launched_at", "created_at", "progress", "access_ip_v4", "locked_by",
]  # fmt: skip
JUNK_KEYS = ["_x", "junk", "", "metadata", "sort_key ", "ŝort_key", "limit[]", "a" * 300]
SORT_KEYS = ["created_at", "display_name", "host", "uuid", "launched_at", "task_state", "id"]
VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            "(",
            ")",
            "[",
            "]",
            "*",
            "+",
            "?",
            "\\",
            "^",
            "$",
            "|",
            "{1,",
            "(?P<x>",
            "a{99999}",
            "\\d{1,1000}",
            "(?i)x",
            "x(?i)",
            "[[:alpha:]]",
            "%",
            "_",
            "'",
            '"',
            "\x00",
            "\x01",
            "ACTIVE",
            "bogus",
            "active",
            "SOFT_DELETED",
            "DELETED",
            "asc",
            "desc",
            "up",
            "true",
            "false",
            "1",
            "0",
            "-1",
            "yes",
            "admin",
            "demo",
            "proj-01",
            "2024-06-01",
            "2024-06-01T00:00:00Z",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "not-a-date",
            "2024-02-30",
            "ﾀﾞ",
            "café",
            "サーバー",
            "😀",
            "\u202e",
            "\ud7ff",
            str(2**31),
            str(2**63),
            str(10**30),
            "9" * 5000,
            str(uuid.UUID(int=1)),
            "00000000-0000-0000-0000-000000000000",
        ]
    ),
    st.integers().map(str),
    st.sampled_from(SORT_KEYS),
)
PARAMS = st.lists(
    st.tuples(st.sampled_from(KNOWN + JUNK_KEYS) | st.text(max_size=12), VALUES), max_size=6
)
HEADERS = st.sampled_from(
    [{}, {"OpenStack-API-Version": "compute 2.38"}, {"OpenStack-API-Version": "compute 2.75"},
     {"OpenStack-API-Version": "compute latest"}]
)  # fmt: skip


def _assert_not_a_server_error(response: httpx.Response, *, in_hypothesis: bool = False) -> None:
    if in_hypothesis:
        event(f"status {response.status_code}")  # see --hypothesis-show-statistics
    assert response.status_code < 500, (response.request.url, response.text)
    body = response.json()
    assert isinstance(body, dict)
    if response.status_code >= 400:
        (fault,) = body.values()
        assert fault["code"] == response.status_code
        assert isinstance(fault["message"], str)
    else:
        assert isinstance(body["servers"], list)


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    params=PARAMS,
    token=st.sampled_from([ADMIN, DEMO, OTHER]),
    path=st.sampled_from([SERVERS, DETAIL]),
    headers=HEADERS,
)
async def test_random_queries_never_5xx_sqlite(
    sqlite_client: httpx.AsyncClient,
    params: list[tuple[str, str]],
    token: str,
    path: str,
    headers: dict[str, str],
) -> None:
    response = await get(sqlite_client, path, params, token, headers)
    _assert_not_a_server_error(response, in_hypothesis=True)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    params=PARAMS,
    token=st.sampled_from([ADMIN, DEMO]),
    path=st.sampled_from([SERVERS, DETAIL]),
    headers=HEADERS,
)
async def test_random_queries_never_5xx_postgres(
    pg_client: httpx.AsyncClient,
    params: list[tuple[str, str]],
    token: str,
    path: str,
    headers: dict[str, str],
) -> None:
    response = await get(pg_client, path, params, token, headers)
    _assert_not_a_server_error(response, in_hypothesis=True)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("marker", "\x00"),
        ("flavor", "\x00"),
        ("image", "\x00"),
        ("name", "\x00"),
        ("project_id", "\x00"),
        ("power_state", str(2**40)),
        ("power_state", str(10**30)),
        ("changes-since", "0001-01-01T00:00:00+14:00"),
        ("changes-before", "9999-12-31T23:59:59-14:00"),
        ("name", "a{99999}"),
        ("name", "(?P<x>a)"),
        ("limit", "9" * 5000),
        ("uuid", "x" * 100),
        ("tags", "%_\\"),
    ],
    ids=lambda value: value if len(value) < 40 else f"{value[:8]}...({len(value)} chars)",
)
@pytest.mark.parametrize("backend", ["sqlite", "pg"])
async def test_known_hostile_values_never_5xx(
    sqlite_client: httpx.AsyncClient,
    pg_client: httpx.AsyncClient,
    backend: str,
    name: str,
    value: str,
) -> None:
    client = sqlite_client if backend == "sqlite" else pg_client
    params = [("all_tenants", "1"), (name, value)]
    headers = {"OpenStack-API-Version": "compute 2.90"}
    for path in (SERVERS, DETAIL):
        _assert_not_a_server_error(await get(client, path, params, ADMIN, headers))


# --- bounds on costly input ----------------------------------------------------------------


def _tags(n: int) -> str:
    return ",".join(f"t{i}" for i in range(n))


@pytest.mark.parametrize(
    ("params", "status", "contains"),
    [
        ([("tags", _tags(1000))], 400, "1000 tags"),  # the hostile query
        ([("tags-any", _tags(51))], 400, "tags-any"),
        ([("not-tags", "a" * 61)], 400, "longer than 60"),
        ([("tags-any", _tags(2000))], 414, "Request URI too long"),
        ([("name", "a" * 256)], 400, "name"),
        ([("sort_key", "display_name")] * 17, 400, "sort_key"),
        ([("uuid", "x")] * 1001, 400, "at most 1000"),
    ],
    ids=["tags-1000", "tags-any-51", "tag-61-chars", "tags-any-2000", "regex-256", "sort-17",
         "uuid-1001"],
)  # fmt: skip
@pytest.mark.parametrize("backend", ["sqlite", "pg"])
async def test_costly_input_is_refused_and_costs_the_others_nothing(
    sqlite_client: httpx.AsyncClient,
    pg_client: httpx.AsyncClient,
    backend: str,
    params: list[tuple[str, str]],
    status: int,
    contains: str,
) -> None:
    client = sqlite_client if backend == "sqlite" else pg_client
    headers = {"OpenStack-API-Version": "compute 2.26"}
    for _ in range(2):  # twice: the breakers opened on the second
        assert_fault(
            await get(client, SERVERS, params, "mallory:proj-05", headers), status, contains
        )
    for token, query in ((DEMO, [("limit", "5")]), (ADMIN, [("all_tenants", "1"), ("limit", "5")])):
        response = await get(client, SERVERS, query, token)
        assert len(ids(response)) == 5
        assert "X-Cells-Unavailable" not in response.headers


async def test_costly_input_at_its_bounds_is_served(sqlite_client: httpx.AsyncClient) -> None:
    headers = {"OpenStack-API-Version": "compute 2.26"}
    for params in (
        [("tags", _tags(50))],
        [("not-tags-any", "a" * 60)],
        [("name", "a" * 255)],
        [("sort_key", "display_name")] * 16,
    ):
        response = await get(sqlite_client, SERVERS, params, ADMIN, headers)
        assert response.status_code == 200, (params[0], response.text)


def test_oracle_timestamps_are_naive_utc() -> None:
    """The oracle compares changes-since like the gateway: aware times become naive UTC."""
    q = query_from_params([("changes-since", "2024-06-01T02:00:00+02:00")], "demo")
    assert q.changes_since == dt.datetime(2024, 6, 1)
