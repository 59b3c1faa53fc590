"""Nova's policy through the app (trusted-headers callers, real PostgreSQL cells): the
default matrix for roles reader, member and admin, an operator's file granting an
``auditor`` role ``get_all_tenants``, the view rules, a file edited while serving, and a
page cache that never serves one caller's fields to another."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.apps import app_client
from tests.support.cellsets import CellSet

pytestmark = pytest.mark.integration

READER, MEMBER, ADMIN = "reader", "member,reader", "admin,member,reader"
AUDITOR = "auditor,reader"
AUDITOR_POLICY = """\
"os_compute_api:servers:index:get_all_tenants": "rule:context_is_admin or role:auditor"
"os_compute_api:servers:detail:get_all_tenants": "rule:context_is_admin or role:auditor"
"""
EXTENDED = "OS-EXT-SRV-ATTR:host"


def _headers(roles: str, project: str = "demo", version: str = "2.75") -> dict[str, str]:
    return {
        "X-Project-Id": project,
        "X-User-Id": f"user-of-{project}",
        "X-Roles": roles,
        "OpenStack-API-Version": f"compute {version}",
    }


def _servers(response: httpx.Response) -> list[dict[str, object]]:
    assert response.status_code == 200, response.text
    servers: list[dict[str, object]] = response.json()["servers"]
    return servers


def _forbidden(response: httpx.Response, rule: str) -> None:
    assert response.status_code == 403, response.text
    assert (
        response.json()["forbidden"]["message"] == f"Policy doesn't allow {rule} to be performed."
    )


def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def _touch(path: Path, text: str) -> None:
    """Rewrite ``path``, its modification time surely later (a coarse clock could repeat)."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


@pytest.fixture
async def gateway(pg_cells: CellSet, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The app with Nova's default policy (no file), no page cache."""
    settings = pg_cells.settings(auth_mode="trusted-headers", page_cache_ttl_s=0)
    async with app_client(settings) as client:
        yield client


@pytest.mark.parametrize("roles", [READER, MEMBER])
async def test_readers_and_members_see_their_project(
    gateway: httpx.AsyncClient, roles: str
) -> None:
    servers = _servers(await gateway.get("/v2.1/servers/detail?limit=50", headers=_headers(roles)))
    assert servers
    assert {s["tenant_id"] for s in servers} == {"demo"}
    assert all(EXTENDED not in s and "host_status" not in s for s in servers)
    flavors = [s["flavor"] for s in servers if s["flavor"]]
    assert flavors
    assert all("extra_specs" in f for f in flavors if isinstance(f, dict))
    for path, rule in [
        ("/v2.1/servers?all_tenants=1", "os_compute_api:servers:index:get_all_tenants"),
        ("/v2.1/servers/detail?all_tenants=1", "os_compute_api:servers:detail:get_all_tenants"),
    ]:
        _forbidden(await gateway.get(path, headers=_headers(roles)), rule)
    sorted_by_host = await gateway.get("/v2.1/servers?sort_key=host", headers=_headers(roles))
    assert sorted_by_host.status_code == 403
    # Without allow_all_filters an admin-only filter is dropped, as Nova drops it.
    plain = _servers(await gateway.get("/v2.1/servers?limit=20", headers=_headers(roles)))
    filtered = await gateway.get("/v2.1/servers?limit=20&host=nowhere", headers=_headers(roles))
    assert _servers(filtered) == plain


async def test_admins_see_everything(gateway: httpx.AsyncClient) -> None:
    url = "/v2.1/servers/detail?all_tenants=1&limit=200"
    servers = _servers(await gateway.get(url, headers=_headers(ADMIN, "admin")))
    assert len({s["tenant_id"] for s in servers}) > 2
    assert all(EXTENDED in s and "host_status" in s for s in servers)
    filtered = await gateway.get(f"{url}&host=nowhere", headers=_headers(ADMIN, "admin"))
    assert _servers(filtered) == []
    by_host = await gateway.get("/v2.1/servers?sort_key=host", headers=_headers(ADMIN, "admin"))
    assert by_host.status_code == 200


async def test_a_caller_without_reader_lists_nothing(gateway: httpx.AsyncClient) -> None:
    _forbidden(
        await gateway.get("/v2.1/servers", headers=_headers("foo")), "os_compute_api:servers:index"
    )
    _forbidden(
        await gateway.get("/v2.1/servers/detail", headers=_headers("foo")),
        "os_compute_api:servers:detail",
    )
    own = _servers(await gateway.get("/v2.1/servers?limit=1", headers=_headers(READER)))
    shown = await gateway.get(f"/v2.1/servers/{own[0]['id']}", headers=_headers("foo"))
    _forbidden(shown, "os_compute_api:servers:show")


async def _walk(client: httpx.AsyncClient, headers: dict[str, str], limit: int) -> list[str]:
    ids: list[str] = []
    url: str | None = f"/v2.1/servers?all_tenants=1&limit={limit}"
    while url is not None and len(ids) < 4 * limit:
        body = (await client.get(url, headers=headers)).json()
        ids += [s["id"] for s in body["servers"]]
        links = body.get("servers_links") or []
        url = links[0]["href"].removeprefix("http://gateway.test") if links else None
    return ids


async def test_an_auditor_allowed_get_all_tenants(pg_cells: CellSet, tmp_path: Path) -> None:
    settings = pg_cells.settings(
        auth_mode="trusted-headers", policy_file=_policy(tmp_path, AUDITOR_POLICY)
    )
    async with app_client(settings) as client:
        auditor = _headers(AUDITOR, "proj-03")
        url = "/v2.1/servers/detail?all_tenants=1&limit=200"
        servers = _servers(await client.get(url, headers=auditor))
        assert len({s["tenant_id"] for s in servers}) > 2
        assert all(EXTENDED not in s and "host_status" not in s for s in servers)
        # Pages after a marker of another project, every page cold (no frontier shared
        # with the admin's walk): the same servers in the same order as an admin's walk.
        admin = _headers(ADMIN, "admin")
        assert await _walk(client, auditor, 40) == await _walk(client, admin, 40)
        # get_all_tenants is no context_is_admin: show stays within the project (404).
        other = next(s for s in servers if s["tenant_id"] != "proj-03")
        response = await client.get(f"/v2.1/servers/{other['id']}", headers=auditor)
        assert response.status_code == 404
        shown = await client.get(f"/v2.1/servers/{other['id']}", headers=admin)
        assert EXTENDED in shown.json()["server"]
        # A reader of the same project is not an auditor.
        reader = await client.get(url, headers=_headers(READER, "proj-03"))
        _forbidden(reader, "os_compute_api:servers:detail:get_all_tenants")


async def test_view_rules_from_a_file(pg_cells: CellSet, tmp_path: Path) -> None:
    policy = _policy(
        tmp_path,
        '"os_compute_api:servers:show:host_status:unknown-only": "@"\n'
        '"os_compute_api:servers:show:flavor-extra-specs": "!"\n',
    )
    settings = pg_cells.settings(auth_mode="trusted-headers", policy_file=policy)
    async with app_client(settings) as client:
        headers = _headers(READER, version="2.47")
        servers = _servers(await client.get("/v2.1/servers/detail?limit=100", headers=headers))
        assert {s.get("host_status") for s in servers} <= {"UNKNOWN", None}
        assert any(s.get("host_status") == "UNKNOWN" for s in servers)
        assert all(
            "extra_specs" not in s["flavor"] for s in servers if isinstance(s["flavor"], dict)
        )
        shown = (await client.get(f"/v2.1/servers/{servers[0]['id']}", headers=headers)).json()
        assert "extra_specs" not in shown["server"]["flavor"]


async def test_the_page_cache_keeps_callers_apart(pg_cells: CellSet, tmp_path: Path) -> None:
    policy = _policy(tmp_path, '"os_compute_api:os-extended-server-attributes": "role:ops"\n')
    settings = pg_cells.settings(
        auth_mode="trusted-headers", policy_file=policy, page_cache_ttl_s=60
    )
    async with app_client(settings) as client:
        url = "/v2.1/servers/detail?limit=5"
        first = _servers(await client.get(url, headers=_headers(READER)))
        ops = _servers(await client.get(url, headers=_headers(f"{READER},ops")))
        again = _servers(await client.get(url, headers=_headers(READER)))
        assert all(EXTENDED not in s for s in first + again)
        assert all(EXTENDED in s for s in ops)
        assert [s["id"] for s in ops] == [s["id"] for s in first]


async def test_an_edited_file_applies_to_the_next_request(
    pg_cells: CellSet, tmp_path: Path
) -> None:
    policy = _policy(tmp_path, "{}\n")
    settings = pg_cells.settings(auth_mode="trusted-headers", policy_file=policy)
    async with app_client(settings) as client:
        url = "/v2.1/servers?all_tenants=1&limit=5"
        auditor = _headers(AUDITOR, "proj-03")
        assert (await client.get(url, headers=auditor)).status_code == 403
        _touch(policy, AUDITOR_POLICY)
        assert len(_servers(await client.get(url, headers=auditor))) == 5
        _touch(policy, '"os_compute_api:servers:index": [unclosed\n')  # kept: still allowed
        assert len(_servers(await client.get(url, headers=auditor))) == 5
        _touch(policy, "{}\n")
        assert (await client.get(url, headers=auditor)).status_code == 403
