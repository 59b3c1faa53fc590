"""Microversions 2.91 to 2.104 on real PostgreSQL and MariaDB cells (docs/nova-2.91-2.104.md).

The values are checked against the databases read here independently: the request spec's
JSON (``pinned_availability_zone`` from 2.96, ``scheduler_hints`` from 2.100) and the
instance's ``instance_system_metadata`` rows (the image properties of 2.98: only Nova's
``ImageMetaProps`` names, never a NULL; ``locked_reason`` from 2.73). A server without a
request spec shows ``null`` hints in a listing and ``{}`` in show, as Nova's two code paths
do. The ``group`` hint is there only when the caller finds the server group as Nova's
project-scoped group query does (an admin: any existing group; anyone else: their
project's). Show rejects any query parameter from 2.102 and ignores them before.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from cells.registry import async_url
from cells.schema import (
    instance_group_member,
    instance_groups,
    instance_system_metadata,
    request_specs,
)
from tests.support.apps import app_client
from tests.support.cellsets import CellSet

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ADMIN = "admin:admin"
DETAIL = "/v2.1/servers/detail"
SHOWN_PROPERTIES = {"hw_disk_bus": "virtio", "os_distro": "cirros"}  # what the seeder writes


@pytest.fixture(scope="module", params=["pg_cells", "mariadb_cells"])
def cell_set(request: pytest.FixtureRequest) -> CellSet:
    found: CellSet = request.getfixturevalue(request.param)
    return found


@pytest.fixture(scope="module")
async def client(cell_set: CellSet) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(cell_set.settings(page_cache_ttl_s=0)) as http:
        yield http


async def _rows(url: str, query: object) -> list[dict[str, object]]:
    engine = create_async_engine(async_url(url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(query)  # type: ignore[call-overload]  # a Core Select of untyped columns; execute's overloads are typed rows
            return [dict(row) for row in result.mappings().all()]
    finally:
        await engine.dispose()


async def _write(url: str, *statements: object) -> None:
    engine = create_async_engine(async_url(url), poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(statement)  # type: ignore[call-overload]  # a list of mixed Core statements; execute's overloads want one kind
    finally:
        await engine.dispose()


async def _get(
    client: httpx.AsyncClient, url: str, version: str, token: str = ADMIN
) -> httpx.Response:
    headers = {"X-Auth-Token": token, "OpenStack-API-Version": f"compute {version}"}
    return await client.get(url, headers=headers)


async def _specs(cell_set: CellSet) -> dict[str, dict[str, object]]:
    rows = await _rows(
        cell_set.api_url, select(request_specs.c.instance_uuid, request_specs.c.spec)
    )
    return {str(r["instance_uuid"]): json.loads(str(r["spec"]))["nova_object.data"] for r in rows}


async def _page(client: httpx.AsyncClient, version: str) -> list[dict[str, object]]:
    response = await _get(client, f"{DETAIL}?all_tenants=1&limit=60", version)
    assert response.status_code == 200, response.text
    servers: list[dict[str, object]] = response.json()["servers"]
    assert len(servers) == 60
    return servers


async def test_fields_follow_the_microversion(client: httpx.AsyncClient) -> None:
    for version, present in (
        ("2.90", set()),
        ("2.96", {"pinned_availability_zone"}),
        ("2.100", {"pinned_availability_zone", "scheduler_hints"}),
        ("2.104", {"pinned_availability_zone", "scheduler_hints"}),
    ):
        for server in await _page(client, version):
            assert {"pinned_availability_zone", "scheduler_hints"} & set(server) == present
            image = server["image"]
            if isinstance(image, dict):
                major, minor = version.split(".")
                assert ("properties" in image) == ((int(major), int(minor)) >= (2, 98))


async def test_values_come_from_the_request_spec_and_system_metadata(
    cell_set: CellSet, client: httpx.AsyncClient
) -> None:
    specs = await _specs(cell_set)
    servers = await _page(client, "2.100")
    pinned = hinted = with_image = 0
    for server in servers:
        spec = specs[str(server["id"])]
        assert server["pinned_availability_zone"] == spec.get("availability_zone")
        assert server["scheduler_hints"] == spec.get("scheduler_hints")
        pinned += server["pinned_availability_zone"] is not None
        hinted += bool(server["scheduler_hints"])
        shown = await _get(client, f"/v2.1/servers/{server['id']}", "2.100")
        assert shown.status_code == 200, shown.text
        body = shown.json()["server"]
        assert body["pinned_availability_zone"] == server["pinned_availability_zone"]
        assert body["scheduler_hints"] == server["scheduler_hints"]
        assert body["image"] == server["image"]
        image = server["image"]
        if isinstance(image, dict):
            with_image += 1
            assert image["properties"] == SHOWN_PROPERTIES  # no min_disk, no NULL
        else:
            assert image == ""  # boot from volume: no image, no properties
    assert pinned >= 1
    assert pinned < len(servers)
    assert hinted >= 1
    assert with_image >= 1


async def test_locked_reason_and_properties_are_read_live(
    cell_set: CellSet, client: httpx.AsyncClient
) -> None:
    server = next(s for s in await _page(client, "2.98") if isinstance(s["image"], dict))
    uuid = str(server["id"])
    assert server["locked_reason"] is None
    sm = instance_system_metadata
    for cell in cell_set.cells:
        owned = await _rows(cell.url, select(sm.c.id).where(sm.c.instance_uuid == uuid))
        if owned:
            break
    else:
        raise AssertionError(f"no system metadata for {uuid}")
    top = max(int(r["id"]) for r in await _rows(cell.url, select(sm.c.id)))  # type: ignore[call-overload]  # a Core Select of untyped columns; execute's overloads are typed rows
    await _write(
        cell.url,
        insert(sm).values(id=top + 1, instance_uuid=uuid, key="locked_reason", value="audit"),
        insert(sm).values(id=top + 2, instance_uuid=uuid, key="image_os_type", value="linux"),
        update(sm)
        .where(sm.c.instance_uuid == uuid, sm.c.key == "image_hw_disk_bus")
        .values(deleted=sm.c.id),
    )
    try:
        shown = (await _get(client, f"/v2.1/servers/{uuid}", "2.98")).json()["server"]
        assert shown["locked_reason"] == "audit"
        assert shown["image"]["properties"] == {"os_distro": "cirros", "os_type": "linux"}
        old = (await _get(client, f"/v2.1/servers/{uuid}", "2.72")).json()["server"]
        assert "locked_reason" not in old
        assert "properties" not in old["image"]
    finally:
        await _write(
            cell.url,
            delete(sm).where(sm.c.id > top),
            update(sm).where(sm.c.instance_uuid == uuid).values(deleted=0),
        )


async def test_a_server_without_a_request_spec(
    cell_set: CellSet, client: httpx.AsyncClient
) -> None:
    uuid = str((await _page(client, "2.1"))[0]["id"])
    spec = request_specs.c
    [saved] = await _rows(cell_set.api_url, select(request_specs).where(spec.instance_uuid == uuid))
    await _write(cell_set.api_url, delete(request_specs).where(spec.instance_uuid == uuid))
    try:
        listed = next(s for s in await _page(client, "2.100") if s["id"] == uuid)
        assert listed["pinned_availability_zone"] is None
        assert listed["scheduler_hints"] is None
        shown = (await _get(client, f"/v2.1/servers/{uuid}", "2.100")).json()["server"]
        assert shown["pinned_availability_zone"] is None
        assert shown["scheduler_hints"] == {}
    finally:
        await _write(cell_set.api_url, insert(request_specs).values(**saved))


async def test_show_rejects_query_parameters_from_2_102(client: httpx.AsyncClient) -> None:
    uuid = str((await _page(client, "2.1"))[0]["id"])
    for version in ("2.1", "2.101"):
        response = await _get(client, f"/v2.1/servers/{uuid}?foo=1", version)
        assert response.status_code == 200, response.text
    response = await _get(client, f"/v2.1/servers/{uuid}?foo=1&bar=2", "2.102")
    assert response.status_code == 400, response.text
    assert response.json()["badRequest"]["message"] == (
        "Invalid input for query parameters. Additional properties are not allowed "
        "('bar', 'foo' were unexpected)"
    )
    # Validation comes before the lookup, as in Nova: an unknown server is a 400 too.
    missing = await _get(client, "/v2.1/servers/nothing?foo=1", "2.104")
    assert missing.status_code == 400
    assert (await _get(client, f"/v2.1/servers/{uuid}", "2.104")).status_code == 200
    assert (await _get(client, "/v2.1/servers/x", "2.105")).status_code == 406


# Members may list every project: a non-admin all-tenants caller, as a policy file makes one.
ALL_TENANTS_POLICY = """\
"os_compute_api:servers:index:get_all_tenants": "rule:context_is_admin or role:member"
"os_compute_api:servers:detail:get_all_tenants": "rule:context_is_admin or role:member"
"""
MEMBER = "demo:demo"


def _without_group(hints: object) -> object:
    return {k: v for k, v in hints.items() if k != "group"} if isinstance(hints, dict) else hints


async def _listing(client: httpx.AsyncClient, token: str) -> dict[str, dict[str, object]]:
    response = await _get(client, f"{DETAIL}?all_tenants=1&limit=1000", "2.100", token)
    assert response.status_code == 200, response.text
    return {str(s["id"]): s for s in response.json()["servers"]}


async def test_group_hints_as_the_caller_finds_the_group(cell_set: CellSet, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(ALL_TENANTS_POLICY)
    specs = await _specs(cell_set)
    ig, member = instance_groups.c, instance_group_member.c
    owners = {
        str(r["uuid"]): str(r["project_id"])
        for r in await _rows(cell_set.api_url, select(ig.uuid, ig.project_id))
    }
    settings = cell_set.settings(page_cache_ttl_s=0, policy_file=policy)
    async with app_client(settings) as client:
        as_member, as_admin = await _listing(client, MEMBER), await _listing(client, ADMIN)
        assert as_member.keys() == as_admin.keys()
        seen = {"own": 0, "foreign": 0}
        for uuid, server in as_member.items():
            hints = specs[uuid].get("scheduler_hints")
            assert as_admin[uuid]["scheduler_hints"] == hints
            group = specs[uuid].get("instance_group")
            if not isinstance(group, dict):
                assert server["scheduler_hints"] == hints
                continue
            owner = owners[group["nova_object.data"]["uuid"]]
            mine = owner == "demo"
            seen["own" if mine else "foreign"] += 1
            assert server["scheduler_hints"] == (hints if mine else _without_group(hints)), uuid
        assert seen["own"] >= 1, seen
        assert seen["foreign"] >= 1, seen

        # Show (2.71's server_groups, 2.100's hints) of a grouped server of the caller's own
        # project; then its group deleted: the hint goes for everyone, the group too.
        uuid, group_uuid = next(
            (u, str(g["nova_object.data"]["uuid"]))
            for u, spec in specs.items()
            if u in as_member
            and isinstance(g := spec.get("instance_group"), dict)
            and owners[g["nova_object.data"]["uuid"]] == "demo"
            and as_member[u]["tenant_id"] == "demo"
        )
        shown = (await _get(client, f"/v2.1/servers/{uuid}", "2.100", MEMBER)).json()["server"]
        assert shown["server_groups"] == [group_uuid]
        assert "group" in shown["scheduler_hints"]
        [saved] = await _rows(
            cell_set.api_url, select(instance_groups).where(ig.uuid == group_uuid)
        )
        members = await _rows(
            cell_set.api_url,
            select(instance_group_member).where(member.group_id == saved["id"]),
        )
        await _write(
            cell_set.api_url,
            delete(instance_group_member).where(member.group_id == saved["id"]),
            delete(instance_groups).where(ig.uuid == group_uuid),
        )
        try:
            for token in (MEMBER, ADMIN):
                response = await _get(client, f"/v2.1/servers/{uuid}", "2.100", token)
                shown = response.json()["server"]
                assert shown["server_groups"] == []
                assert shown["scheduler_hints"] == _without_group(specs[uuid]["scheduler_hints"])
                assert "group" not in (await _listing(client, token))[uuid]["scheduler_hints"]
        finally:
            await _write(
                cell_set.api_url,
                insert(instance_groups).values(**saved),
                *(insert(instance_group_member).values(**m) for m in members),
            )
