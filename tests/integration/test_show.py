"""``GET /v2.1[/{project_id}]/servers/{id}`` (issue #9 item 1) on real cells.

The show body must be the server's ``/servers/detail`` entry at the same microversion and
role — byte for byte after JSON decoding — plus ``server_groups`` from 2.71 (Nova shows
it on ``show`` only), which must name the group the API database's
``instance_group_member`` gives. Servers are sampled at random positions of the oracle's
order (rows read straight from the cells): windows of the detail listing are fetched with
a marker, checked against the oracle, and each server in them is shown; ERROR (faults) and
SOFT_DELETED servers are added on purpose.

404 cases, soft-deleted servers, another project's servers, ids that are not uuids, and a
cell that refuses connections or hangs (Nova's 2.69 down-cell view from the mapping and
the request spec; 503 with ``Retry-After`` before 2.69) are checked one by one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import socket
import sqlite3
import time
import uuid as uuid_module
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from cells.registry import async_url
from cells.schema import (
    instance_group_member,
    instance_groups,
    instance_mappings,
    request_specs,
)
from cells.seeding import SeedCell, SeedPlan, cell_uuid, seed
from gateway.settings import Settings, StaticCell
from tests.support.apps import app_and_client, app_client
from tests.support.cellsets import CellSet
from tests.support.liveserver import free_port
from tests.support.logs import JsonLines, captured_lines
from tests.support.oracle import OracleQuery, Snapshot, expected_uuids, load_snapshot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

MICROVERSIONS = ("2.1", "2.3", "2.47", "2.69", "2.90")
TOKENS = {"admin": "admin:admin", "non-admin": "demo:demo"}
DETAIL = "/v2.1/servers/detail"
WINDOWS = 8  # detail windows sampled per microversion and role
WINDOW = 5  # servers per window


def _headers(token: str, version: str) -> dict[str, str]:
    return {"X-Auth-Token": token, "OpenStack-API-Version": f"compute {version}"}


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def _pg_url(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@dataclass(frozen=True)
class ApiFacts:
    """What the API database says, read with plain SQL (not through the gateway)."""

    groups: dict[str, str]  # instance uuid → its server group's uuid
    specs: dict[str, dict[str, Any]]  # instance uuid → request spec (nova_object.data)
    mappings: dict[str, dict[str, Any]]


async def _api_facts(api_url: str) -> ApiFacts:
    engine = create_async_engine(async_url(api_url), poolclass=NullPool)
    member, group = instance_group_member.c, instance_groups.c
    try:
        async with engine.connect() as conn:
            groups = {
                r.instance_uuid: r.uuid
                for r in await conn.execute(
                    select(member.instance_uuid, group.uuid).join_from(
                        instance_group_member, instance_groups, member.group_id == group.id
                    )
                )
            }
            specs = {
                r.instance_uuid: json.loads(r.spec)["nova_object.data"]
                for r in await conn.execute(
                    select(request_specs.c.instance_uuid, request_specs.c.spec)
                )
            }
            mappings = {
                r["instance_uuid"]: dict(r)
                for r in (await conn.execute(select(instance_mappings))).mappings()
            }
    finally:
        await engine.dispose()
    return ApiFacts(groups, specs, mappings)


@pytest.fixture(scope="module")
async def snapshot(pg_cells: CellSet) -> Snapshot:
    return await load_snapshot(pg_cells)


@pytest.fixture(scope="module")
async def facts(pg_cells: CellSet) -> ApiFacts:
    return await _api_facts(pg_cells.api_url)


@pytest.fixture(scope="module", params=["pg_cells", "mariadb_cells"])
def any_cells(request: pytest.FixtureRequest) -> CellSet:
    """PostgreSQL cells, then MariaDB cells (the show checks that need no outage)."""
    found: CellSet = request.getfixturevalue(request.param)
    return found


@pytest.fixture(scope="module")
async def any_snapshot(any_cells: CellSet) -> Snapshot:
    return await load_snapshot(any_cells)


@pytest.fixture(scope="module")
async def any_facts(any_cells: CellSet) -> ApiFacts:
    return await _api_facts(any_cells.api_url)


@dataclass
class Coverage:
    """What the compared servers contained: the interesting shapes must be among them."""

    servers: int = 0
    faults: int = 0
    volumes: int = 0
    boot_from_volume: int = 0
    grouped: int = 0
    statuses: set[str] = field(default_factory=set)

    def add(self, server: dict[str, Any]) -> None:
        self.servers += 1
        self.faults += "fault" in server
        self.volumes += bool(server["os-extended-volumes:volumes_attached"])
        self.boot_from_volume += server["image"] == ""
        self.grouped += bool(server.get("server_groups"))
        self.statuses.add(server["status"])


async def _get(client: httpx.AsyncClient, url: str, token: str, version: str) -> httpx.Response:
    return await client.get(url, headers=_headers(token, version))


async def _assert_show_is_detail_entry(
    client: httpx.AsyncClient,
    entry: dict[str, Any],
    token: str,
    version: str,
    groups: dict[str, str],
    coverage: Coverage,
) -> None:
    response = await _get(client, f"/v2.1/servers/{entry['id']}", token, version)
    assert response.status_code == 200, response.text
    assert response.headers["OpenStack-API-Version"] == f"compute {version}"
    assert "X-Cells-Unavailable" not in response.headers
    body = response.json()
    assert list(body) == ["server"]
    shown = dict(body["server"])
    if _version(version) >= (2, 71):
        group = groups.get(entry["id"])
        assert shown.pop("server_groups") == ([] if group is None else [group])
    assert "server_groups" not in shown
    assert shown == entry, f"show of {entry['id']} at {version} differs from its detail entry"
    coverage.add(body["server"])


def _detail_url(params: dict[str, str]) -> str:
    return f"{DETAIL}?{'&'.join(f'{k}={v}' for k, v in params.items())}"


async def _sample(
    client: httpx.AsyncClient, order: list[str], token: str, version: str, scope: dict[str, str]
) -> list[dict[str, Any]]:
    """Detail entries of ``WINDOWS`` random windows of ``order`` (checked against it)."""
    rng = random.Random(f"{version}/{token}")
    entries: list[dict[str, Any]] = []
    for position in [0, *sorted(rng.sample(range(1, len(order) - WINDOW), WINDOWS - 1))]:
        params = {**scope, "limit": str(WINDOW)}
        if position:
            params["marker"] = order[position - 1]
        response = await _get(client, _detail_url(params), token, version)
        assert response.status_code == 200, response.text
        servers = response.json()["servers"]
        assert [s["id"] for s in servers] == order[position : position + WINDOW]
        entries += servers
    for status in ("ERROR", "SOFT_DELETED"):
        params = {**scope, "status": status, "limit": "4"}
        response = await _get(client, _detail_url(params), token, version)
        assert response.status_code == 200, response.text
        entries += response.json()["servers"]
    return entries


@pytest.mark.parametrize("role", list(TOKENS))
@pytest.mark.parametrize("version", MICROVERSIONS)
async def test_show_is_the_detail_entry(
    any_cells: CellSet, any_snapshot: Snapshot, any_facts: ApiFacts, version: str, role: str
) -> None:
    pg_cells, snapshot, facts = any_cells, any_snapshot, any_facts
    token = TOKENS[role]
    scope = {"all_tenants": "1"} if role == "admin" else {}
    order = expected_uuids(snapshot, OracleQuery(project_id=None if role == "admin" else "demo"))
    coverage = Coverage()
    async with app_client(pg_cells.settings()) as client:
        for entry in await _sample(client, order, token, version, scope):
            await _assert_show_is_detail_entry(
                client, entry, token, version, facts.groups, coverage
            )
    assert coverage.servers >= WINDOWS * WINDOW
    assert coverage.faults >= 1, coverage
    assert {"ACTIVE", "ERROR", "SOFT_DELETED"} <= coverage.statuses, coverage
    if role == "admin":
        projects = {snapshot.by_uuid(u)["project_id"] for u in order}
        assert len(projects) > 2  # the admin sees every project's servers


async def test_show_covers_volumes_boot_from_volume_and_groups(
    any_cells: CellSet, any_snapshot: Snapshot, any_facts: ApiFacts
) -> None:
    """Servers picked for the shapes random windows may miss, at 2.90 and 2.1."""
    pg_cells, snapshot, facts = any_cells, any_snapshot, any_facts
    live = [r for r in snapshot.rows if r["deleted"] == 0 and r["vm_state"] != "soft-delete"]
    grouped = [r for r in live if r["uuid"] in facts.groups][:3]
    from_volume = [r for r in live if r["image_ref"] == ""][:3]
    coverage = Coverage()
    async with app_client(pg_cells.settings()) as client:
        for version in ("2.1", "2.90"):
            for row in grouped + from_volume:
                url = _detail_url({"all_tenants": "1", "uuid": str(row["uuid"])})
                response = await _get(client, url, "admin:admin", version)
                [entry] = response.json()["servers"]
                await _assert_show_is_detail_entry(
                    client, entry, "admin:admin", version, facts.groups, coverage
                )
    assert coverage.grouped >= len(grouped) > 0
    assert coverage.boot_from_volume >= 2 * len(from_volume) > 0


# --------------------------------------------------------------------------------------
# Not found, and who may see what
# --------------------------------------------------------------------------------------


def _assert_not_found(response: httpx.Response, server_id: str) -> None:
    assert response.status_code == 404, response.text
    assert response.json() == {
        "itemNotFound": {"code": 404, "message": f"Instance {server_id} could not be found."}
    }


async def test_not_found_cases(any_cells: CellSet, any_snapshot: Snapshot) -> None:
    pg_cells, snapshot = any_cells, any_snapshot
    deleted = next(r for r in snapshot.rows if r["deleted"] != 0 and r["project_id"] == "demo")
    others = next(
        r for r in snapshot.rows if r["deleted"] == 0 and r["project_id"] not in ("demo", "admin")
    )
    unknown = str(uuid_module.uuid4())
    async with app_and_client(pg_cells.settings()) as (app, client):
        metrics = app.state.cellgate.metrics
        before = metrics.sample("cellgate_show_requests_total", outcome="not_found")
        for server_id in (unknown, "not-a-uuid", "42", unknown.replace("-", ""), f"{unknown}x"):
            for token in TOKENS.values():
                _assert_not_found(
                    await _get(client, f"/v2.1/servers/{server_id}", token, "2.1"), server_id
                )
        # Soft-deleted: not found for its owner nor for an admin (Nova reads
        # read_deleted="no"), at every microversion.
        for version in ("2.1", "2.69", "2.90"):
            for token in TOKENS.values():
                url = f"/v2.1/servers/{deleted['uuid']}"
                _assert_not_found(await _get(client, url, token, version), str(deleted["uuid"]))
        # Another project's server: not found for a non-admin, shown to the admin.
        url = f"/v2.1/servers/{others['uuid']}"
        _assert_not_found(await _get(client, url, "demo:demo", "2.90"), str(others["uuid"]))
        shown = await _get(client, url, "admin:admin", "2.90")
        assert shown.status_code == 200
        assert shown.json()["server"]["tenant_id"] == others["project_id"]
        assert metrics.sample("cellgate_show_requests_total", outcome="not_found") == before + 17


async def test_detail_is_not_a_server_id(pg_cells: CellSet) -> None:
    """``/servers/detail`` stays the listing, with and without the project prefix."""
    async with app_client(pg_cells.settings()) as client:
        for url in (f"{DETAIL}?limit=2", "/v2.1/demo/servers/detail?limit=2"):
            response = await _get(client, url, "demo:demo", "2.90")
            assert response.status_code == 200
            assert len(response.json()["servers"]) == 2


async def test_upper_case_id_and_project_url(any_cells: CellSet, any_snapshot: Snapshot) -> None:
    pg_cells, snapshot = any_cells, any_snapshot
    row = next(r for r in snapshot.rows if r["deleted"] == 0 and r["project_id"] == "demo")
    uuid = str(row["uuid"])
    async with app_client(pg_cells.settings()) as client:
        plain = (await _get(client, f"/v2.1/servers/{uuid}", "demo:demo", "2.90")).json()
        upper = await _get(client, f"/v2.1/servers/{uuid.upper()}", "demo:demo", "2.90")
        assert upper.status_code == 200
        assert upper.json() == plain
        scoped = await _get(client, f"/v2.1/demo/servers/{uuid}", "demo:demo", "2.90")
        assert scoped.status_code == 200
        links = scoped.json()["server"]["links"]
        assert links == [
            {"rel": "self", "href": f"http://gateway.test/v2.1/demo/servers/{uuid}"},
            {"rel": "bookmark", "href": f"http://gateway.test/demo/servers/{uuid}"},
        ]
        wrong = await _get(client, f"/v2.1/proj-01/servers/{uuid}", "demo:demo", "2.90")
        assert wrong.status_code == 400
        assert "doesn't match" in wrong.json()["badRequest"]["message"]


@pytest.fixture
async def extra_mappings(pg_cells: CellSet) -> AsyncIterator[list[str]]:
    """Mappings with no instance behind them: a build not yet in a cell (``cell_id``
    NULL), and a mapping into cell1 whose row is gone; removed afterwards."""
    made = [str(uuid_module.uuid4()), str(uuid_module.uuid4())]
    conn = await asyncpg.connect(_pg_url(pg_cells.api_url))
    try:
        await conn.executemany(
            "INSERT INTO instance_mappings (instance_uuid, cell_id, project_id, user_id, "
            "queued_for_delete, created_at) VALUES ($1, $2, 'demo', 'demo', false, now())",
            [(made[0], None), (made[1], 1)],
        )
        yield made
    finally:
        await conn.execute("DELETE FROM instance_mappings WHERE instance_uuid = ANY($1)", made)
        await conn.close()


async def test_mapping_without_instance_is_not_found(
    pg_cells: CellSet, extra_mappings: list[str]
) -> None:
    async with app_client(pg_cells.settings()) as client:
        for server_id in extra_mappings:
            for version in ("2.1", "2.69"):
                response = await _get(client, f"/v2.1/servers/{server_id}", "demo:demo", version)
                _assert_not_found(response, server_id)


async def test_sqlite_cells(sqlite_cells: CellSet) -> None:
    """The embedded backend: show is the detail entry there too."""
    coverage = Coverage()
    async with app_client(sqlite_cells.settings()) as client:
        for version in ("2.1", "2.90"):
            for token, scope in (("demo:demo", ""), ("admin:admin", "&all_tenants=1")):
                url = f"{DETAIL}?limit=40{scope}"
                entries = (await _get(client, url, token, version)).json()["servers"]
                url = f"{DETAIL}?limit=5&status=ERROR{scope}"
                entries += (await _get(client, url, token, version)).json()["servers"]
                for entry in entries:
                    response = await _get(client, f"/v2.1/servers/{entry['id']}", token, version)
                    assert response.status_code == 200, response.text
                    shown = response.json()["server"]
                    if version == "2.90":
                        assert isinstance(shown.pop("server_groups"), list)
                    assert shown == entry
                    coverage.add(entry)
    assert coverage.servers >= 180
    assert coverage.faults >= 1


# --------------------------------------------------------------------------------------
# Logging and metrics
# --------------------------------------------------------------------------------------


@pytest.fixture
def show_log() -> Iterator[JsonLines]:
    with captured_lines("gateway.show") as lines:
        yield lines


async def test_cell_outcome_logged_once_with_the_request_id(
    pg_cells: CellSet, snapshot: Snapshot, show_log: JsonLines
) -> None:
    row = next(r for r in snapshot.rows if r["deleted"] == 0 and r["project_id"] == "demo")
    async with app_and_client(pg_cells.settings()) as (app, client):
        response = await _get(client, f"/v2.1/servers/{row['uuid']}", "demo:demo", "2.1")
        assert response.status_code == 200
        metrics = app.state.cellgate.metrics
        assert metrics.sample("cellgate_show_requests_total", outcome="found") == 1
    outcomes = show_log.messages("cell outcome")
    assert len(outcomes) == 1, show_log.lines
    [line] = outcomes
    assert line["request_id"] == response.headers["X-OpenStack-Request-Id"]
    assert line["outcome"] == "ok"
    assert line["rows"] == 1
    assert line["cell"].startswith("cell")


# --------------------------------------------------------------------------------------
# A cell that cannot answer
# --------------------------------------------------------------------------------------

DOWN_CELL = "cell2"


def _with_cell2_at(cells: CellSet, url: str, **overrides: Any) -> Settings:
    """The seeded cells as a static list whose cell2 (same uuid, so the same mappings)
    lives at ``url``."""
    static = [
        StaticCell(
            name=c.name, uuid=cell_uuid(c.name), database_url=url if c.name == DOWN_CELL else c.url
        )
        for c in cells.cells
    ]
    return cells.settings(cells=static, page_cache_ttl_s=0, **overrides)


def _in_cell(snapshot: Snapshot, facts: ApiFacts, cell_id: int, project: str) -> list[Any]:
    return [
        r
        for r in snapshot.rows
        if facts.mappings[str(r["uuid"])]["cell_id"] == cell_id and r["project_id"] == project
    ]


def _expected_stub(row: Any, facts: ApiFacts, version: str) -> dict[str, Any]:
    """Nova's ``_show_from_down_cell``, written out from the API database's own rows."""
    uuid = str(row["uuid"])
    mapping, spec = facts.mappings[uuid], facts.specs[uuid]
    flavor = spec["flavor"]["nova_object.data"]
    image = spec["image"]["nova_object.data"]
    base = "http://gateway.test"
    stub: dict[str, Any] = {
        "id": uuid,
        "status": "UNKNOWN",
        "tenant_id": mapping["project_id"],
        "created": mapping["created_at"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "links": [
            {"rel": "self", "href": f"{base}/v2.1/servers/{uuid}"},
            {"rel": "bookmark", "href": f"{base}/servers/{uuid}"},
        ],
        "image": (
            {
                "id": image["id"],
                "links": [{"rel": "bookmark", "href": f"{base}/images/{image['id']}"}],
            }
            if "id" in image
            else ""
        ),
        "flavor": {
            "vcpus": flavor["vcpus"],
            "ram": flavor["memory_mb"],
            "disk": flavor["root_gb"],
            "ephemeral": flavor["ephemeral_gb"],
            "swap": flavor["swap"],
            "original_name": flavor["name"],
            "extra_specs": flavor["extra_specs"],
        },
        "OS-EXT-AZ:availability_zone": spec["availability_zone"] or "UNKNOWN",
        "OS-EXT-STS:power_state": 0,
        "user_id": spec.get("user_id") or "UNKNOWN",
    }
    if _version(version) >= (2, 71):
        group = facts.groups.get(uuid)
        stub["server_groups"] = [] if group is None else [group]
    return stub


def _url_at(cells: CellSet, port: int, database: str) -> str:
    """A URL of the cells' backend on a loopback ``port`` nothing serves."""
    if cells.backend == "mysql":
        return f"mysql+pymysql://root@127.0.0.1:{port}/{database}"
    return f"postgresql://postgres@127.0.0.1:{port}/{database}"


async def test_refusing_cell(
    any_cells: CellSet, any_snapshot: Snapshot, any_facts: ApiFacts
) -> None:
    """cell2 refuses connections: 2.69+ shows Nova's down-cell view, 2.68 a 503; the
    breaker then skips the cell; servers of other cells are unaffected."""
    pg_cells, snapshot, facts = any_cells, any_snapshot, any_facts
    dead = _url_at(pg_cells, free_port(), "nowhere")
    # Start-up finds it down (1 failure), two shows fail (3): the breaker opens.
    settings = _with_cell2_at(pg_cells, dead, breaker_failures=3)
    live_demo = [r for r in _in_cell(snapshot, facts, 2, "demo") if r["deleted"] == 0]
    grouped = [r for r in live_demo if str(r["uuid"]) in facts.groups][:2]
    from_volume = [r for r in live_demo if r["image_ref"] == ""][:2]
    zoned = [r for r in live_demo if facts.specs[str(r["uuid"])]["availability_zone"]][:2]
    picked = live_demo[:4] + grouped + from_volume + zoned
    assert grouped
    assert from_volume
    assert zoned
    async with app_and_client(settings) as (app, client):
        metrics = app.state.cellgate.metrics
        for version in ("2.69", "2.90"):
            for row in picked:
                response = await _get(client, f"/v2.1/servers/{row['uuid']}", "demo:demo", version)
                assert response.status_code == 200, response.text
                assert response.headers["X-Cells-Unavailable"] == DOWN_CELL
                assert response.json() == {"server": _expected_stub(row, facts, version)}
        for version in ("2.1", "2.68"):
            response = await _get(
                client, f"/v2.1/servers/{picked[0]['uuid']}", "demo:demo", version
            )
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"] == str(settings.retry_after_s)
            fault = response.json()["serviceUnavailable"]
            assert fault["code"] == 503
            assert DOWN_CELL in fault["message"]
        # What Nova answers "not found" for, down cell or not: a deleted server (its mapping
        # is queued for delete), another project's server for a non-admin.
        deleted = next(r for r in _in_cell(snapshot, facts, 2, "demo") if r["deleted"] != 0)
        assert facts.mappings[str(deleted["uuid"])]["queued_for_delete"]
        others = next(r for r in _in_cell(snapshot, facts, 2, "proj-01") if r["deleted"] == 0)
        for row in (deleted, others):
            for version in ("2.68", "2.90"):
                response = await _get(client, f"/v2.1/servers/{row['uuid']}", "demo:demo", version)
                _assert_not_found(response, str(row["uuid"]))
        # The admin sees the other project's stub.
        response = await _get(client, f"/v2.1/servers/{others['uuid']}", "admin:admin", "2.90")
        assert response.json() == {"server": _expected_stub(others, facts, "2.90")}
        # Two shows met the refusal; the breaker then opened and the others skipped the cell.
        # The other project's server was refused from its mapping, without the cell.
        outcomes = {
            name: metrics.sample("cellgate_cell_outcomes_total", cell=DOWN_CELL, outcome=name)
            for name in ("error", "skipped")
        }
        assert outcomes == {"error": 2, "skipped": 2 * len(picked) + 5 - 2}
        # Other cells answer in full.
        up = next(r for r in _in_cell(snapshot, facts, 1, "demo") if r["deleted"] == 0)
        response = await _get(client, f"/v2.1/servers/{up['uuid']}", "demo:demo", "2.90")
        assert response.status_code == 200
        assert response.json()["server"]["name"] == up["display_name"]
        assert metrics.sample("cellgate_show_requests_total", outcome="stub") == 2 * len(picked) + 1
        assert metrics.sample("cellgate_show_requests_total", outcome="unavailable") == 2
        assert metrics.sample("cellgate_show_requests_total", outcome="found") == 1


@contextlib.contextmanager
def black_hole(port: int) -> Iterator[None]:
    """A server on ``port`` that accepts TCP connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        yield


class _Timeline(logging.Handler):
    """Log records with the moment they were emitted, for a timing failure's message."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[float, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((time.perf_counter(), record.name, record.getMessage()))

    def since(self, started: float) -> str:
        return "\n".join(f"{(t - started) * 1000:8.1f} ms {n}: {m}" for t, n, m in self.records)


@contextlib.contextmanager
def _timeline(*names: str) -> Iterator[_Timeline]:
    handler = _Timeline()
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


async def test_hung_cell(any_cells: CellSet, any_snapshot: Snapshot, any_facts: ApiFacts) -> None:
    """A cell that stops answering after start-up costs one deadline: a stub at 2.69 and
    an open breaker (a confirmed hang opens it at once), then a 503 at 2.1."""
    pg_cells, snapshot, facts = any_cells, any_snapshot, any_facts
    port = free_port()
    settings = _with_cell2_at(
        pg_cells,
        _url_at(pg_cells, port, "hung"),
        cell_timeout_s=0.5,
        cell_connect_timeout_s=0.4,
        breaker_failures=5,
    )
    row = next(r for r in _in_cell(snapshot, facts, 2, "demo") if r["deleted"] == 0)
    url = f"/v2.1/servers/{row['uuid']}"
    up = next(r for r in _in_cell(snapshot, facts, 1, "demo") if r["deleted"] == 0)
    # At start-up the port refuses (one failure, the breaker stays closed); then it hangs.
    async with app_and_client(settings) as (app, client):
        # A show in a healthy cell first: the timed show below pays no first-request costs.
        assert (await _get(client, f"/v2.1/servers/{up['uuid']}", "demo:demo", "2.69")).is_success
        with black_hole(port), _timeline("cells", "gateway") as timeline:
            started = time.perf_counter()
            response = await _get(client, url, "demo:demo", "2.69")
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, response.text
            assert response.json() == {"server": _expected_stub(row, facts, "2.69")}
            # The deadline, and the probe's grace; the log says where any excess went.
            assert elapsed < 0.5 * 1.2 + 0.4, timeline.since(started)
            response = await _get(client, url, "demo:demo", "2.1")
            assert response.status_code == 503
            assert response.headers["Retry-After"] == str(settings.retry_after_s)
            metrics = app.state.cellgate.metrics
            outcomes = {
                name: metrics.sample("cellgate_cell_outcomes_total", cell=DOWN_CELL, outcome=name)
                for name in ("timeout", "skipped")
            }
            assert outcomes == {"timeout": 1, "skipped": 1}


# --------------------------------------------------------------------------------------
# Whose fault: a cell's schema, the API database
# --------------------------------------------------------------------------------------


@pytest.fixture
async def small_sqlite(tmp_path: Path) -> CellSet:
    """One SQLite cell of its own (these tests break its tables)."""
    cells = [SeedCell("cell1", f"sqlite:///{tmp_path / 'cell1.db'}")]
    api_url = f"sqlite:///{tmp_path / 'api.db'}"
    await seed(api_url, cells, SeedPlan(instances=60, seed=5), progress=False)
    return CellSet(api_url, cells, 60)


def _sqlite(url: str, statement: str) -> None:
    with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
        conn.execute(statement)
        conn.commit()


async def _any_server(client: httpx.AsyncClient) -> str:
    page = await _get(client, "/v2.1/servers?limit=1&all_tenants=1", "admin:admin", "2.1")
    return str(page.json()["servers"][0]["id"])


@pytest.mark.parametrize(
    ("statement", "reason"),
    [
        ("ALTER TABLE instances DROP COLUMN locked_by", "missing_column"),  # the row's read
        (  # the side data's read
            "ALTER TABLE instance_extra RENAME TO instance_extra_gone",
            "missing_table",
        ),
    ],
)
async def test_cell_schema_mismatch_is_a_down_cell_without_the_breaker(
    small_sqlite: CellSet, statement: str, reason: str
) -> None:
    """The cell is left out as a down one is (503 before 2.69, the down-cell view from
    2.69), counted by reason; its breaker never moves (tests/integration/test_broken_cell.py
    does the same on PostgreSQL and MariaDB)."""
    settings = small_sqlite.settings(check_schema_at_startup=False, breaker_failures=1)
    async with app_and_client(settings) as (app, client):
        server_id = await _any_server(client)
        _sqlite(small_sqlite.cells[0].url, statement)
        old = await _get(client, f"/v2.1/servers/{server_id}", "admin:admin", "2.1")
        assert old.status_code == 503, old.text
        assert old.headers["Retry-After"] == "30"
        new = await _get(client, f"/v2.1/servers/{server_id}", "admin:admin", "2.90")
        assert new.status_code == 200, new.text
        assert new.json()["server"]["status"] == "UNKNOWN"
        metrics = app.state.cellgate.metrics
        assert metrics.sample("cellgate_cell_config_errors_total", cell="cell1", reason=reason) == 2
        assert metrics.sample("cellgate_show_requests_total", outcome="unavailable") == 1
        assert metrics.sample("cellgate_show_requests_total", outcome="stub") == 1
        assert metrics.sample("cellgate_cell_breaker_state", cell="cell1") == 0  # closed


async def test_detail_listing_side_table_mismatch_leaves_the_cell_out(
    small_sqlite: CellSet,
) -> None:
    """The page's side-data read (gateway.details): the only cell's rows are left out,
    and with no other cell to show, the listing is a 503 (never an empty 200)."""
    settings = small_sqlite.settings(check_schema_at_startup=False, breaker_failures=1)
    async with app_and_client(settings) as (app, client):
        await _any_server(client)
        _sqlite(small_sqlite.cells[0].url, "ALTER TABLE instance_extra RENAME TO gone")
        summary = await _get(client, "/v2.1/servers?limit=3&all_tenants=1", "admin:admin", "2.1")
        assert summary.status_code == 200  # the summary reads no side table
        assert summary.json()["servers"]
        path = "/v2.1/servers/detail?limit=3&all_tenants=1"
        detail = await _get(client, path, "admin:admin", "2.1")
        assert detail.status_code == 503, detail.text
        stubs = await _get(client, path, "admin:admin", "2.69")
        assert stubs.status_code == 200, stubs.text
        assert {s["status"] for s in stubs.json()["servers"]} == {"UNKNOWN"}
        assert stubs.headers["X-Cells-Unavailable"] == "cell1"
        metrics = app.state.cellgate.metrics
        sample = metrics.sample(
            "cellgate_cell_config_errors_total", cell="cell1", reason="missing_table"
        )
        assert sample == 2
        assert metrics.sample("cellgate_cell_breaker_state", cell="cell1") == 0  # closed


async def test_api_database_failure_is_a_503_when_no_cell_can_stand_in(
    small_sqlite: CellSet,
) -> None:
    async with app_and_client(small_sqlite.settings()) as (_, client):
        server_id = await _any_server(client)
        url = f"/v2.1/servers/{server_id}"
        before = await _get(client, url, "admin:admin", "2.90")
        _sqlite(small_sqlite.api_url, "ALTER TABLE instance_mappings RENAME TO gone")
        # Without the mapping every cell is asked (tests/integration/test_api_db_fallback.py)...
        asked = await _get(client, url, "admin:admin", "2.90")
        assert asked.status_code == 200, asked.text
        assert asked.json() == before.json()
        # ...and with the only cell failing too, nothing tells where the server is.
        _sqlite(small_sqlite.cells[0].url, "ALTER TABLE instances RENAME TO gone")
        response = await _get(client, url, "admin:admin", "2.90")
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "30"
        assert "API database" in response.json()["serviceUnavailable"]["message"]
