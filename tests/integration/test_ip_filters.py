"""``ip`` and ``ip6`` over HTTP on seeded PostgreSQL, MariaDB and SQLite cells, without a
Neutron, against Nova's rule applied in Python to the info caches read from the cells.

The seed's caches hold v4 fixed IPs (10.<project>.x.y), v6 fixed IPs (fd00:<p+1>::x) on
some VIFs, floating IPs (172.24.4.x) nested in some fixed IPs, and each subnet's gateway
(10.<p>.0.1, fd00:<p+1>::1): the floating and gateway addresses must never match. Every walk
pages through next links (small pages) and must equal the oracle's order exactly, as admin
across projects and as a project member (who may use both filters, ``ip6`` from 2.5).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

import httpx
import pytest

from tests.support.apps import app_client
from tests.support.cellsets import CellSet
from tests.support.iporacle import load_info_caches, with_ip
from tests.support.oracle import Record, Snapshot, load_snapshot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ADMIN = {"X-Auth-Token": "admin:admin", "OpenStack-API-Version": "compute 2.90"}


@pytest.fixture(scope="module", params=["pg_cells", "mariadb_cells", "sqlite_cells"])
def cell_set(request: pytest.FixtureRequest) -> CellSet:
    found: CellSet = request.getfixturevalue(request.param)
    return found


@pytest.fixture(scope="module")
async def snapshot(cell_set: CellSet) -> Snapshot:
    return await load_snapshot(cell_set)


@pytest.fixture(scope="module")
async def caches(cell_set: CellSet) -> dict[str, str | None]:
    return await load_info_caches(cell_set)


@pytest.fixture(scope="module")
async def client(cell_set: CellSet) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(cell_set.settings(page_cache_ttl_s=0)) as http:
        yield http


def _order(rows: list[Record]) -> list[str]:
    """created_at desc, uuid asc: the default order."""
    ordered = sorted(rows, key=lambda r: str(r["uuid"]))
    ordered.sort(key=lambda r: r["created_at"], reverse=True)  # type: ignore[arg-type,return-value]  # row values are SqlValue; these rows all hold a datetime
    return [str(r["uuid"]) for r in ordered]


async def _walk(
    client: httpx.AsyncClient, query: str, headers: dict[str, str], limit: int = 40
) -> list[str]:
    url: str | None = f"/v2.1/servers?limit={limit}&{query}"
    out: list[str] = []
    while url is not None:
        response = await client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        out += [s["id"] for s in body["servers"]]
        links = body.get("servers_links", [])
        url = links[0]["href"].removeprefix("http://gateway.test") if links else None
    return out


def _ips(ip: str | None, ip6: str | None) -> str:
    return urlencode([(n, v) for n, v in (("ip", ip), ("ip6", ip6)) if v is not None])


def _live(snapshot: Snapshot) -> list[Record]:
    return [r for r in snapshot.rows if r["deleted"] == 0 and r["vm_state"] != "soft-delete"]


@pytest.mark.parametrize(
    ("ip", "ip6"),
    [
        ("10\\.[0-4]\\.", None),
        ("10.2", None),  # "." is any character: 10.2x too
        ("10\\.3\\.0\\.1$", None),  # the subnet's gateway: never a fixed IP
        ("172\\.24\\.4\\.", None),  # floating IPs only: nothing
        ("^10\\.[0-9]+\\.1[0-9]\\.", None),
        ("0\\.", None),  # anchored at the start: nothing
        (None, "fd00:[1-4]:"),
        (None, "fd00:4::1$"),  # the v6 gateway: never
        ("10\\.[0-2]\\.", "fd00:[5-9]:"),  # either
    ],
)
async def test_admin_walk_equals_nova(
    client: httpx.AsyncClient,
    snapshot: Snapshot,
    caches: dict[str, str | None],
    ip: str | None,
    ip6: str | None,
) -> None:
    query = "all_tenants=1&" + _ips(ip, ip6)
    expected = _order(with_ip(_live(snapshot), caches, ip, ip6))
    assert await _walk(client, query, ADMIN) == expected, (ip, ip6)
    if ip in ("10\\.[0-4]\\.", "10.2") or ip6 == "fd00:[1-4]:":
        assert expected, "the seed has no such address"


async def test_member_walk_equals_nova(
    client: httpx.AsyncClient, snapshot: Snapshot, caches: dict[str, str | None]
) -> None:
    project = str(max(_live(snapshot), key=lambda r: str(r["project_id"]))["project_id"])
    mine = [r for r in _live(snapshot) if r["project_id"] == project]
    member = {"X-Auth-Token": f"member:{project}", "OpenStack-API-Version": "compute 2.5"}
    for ip, ip6 in (("10\\.", None), (None, "fd"), ("10\\.[0-9]+\\.[0-9]\\.", "nothing")):
        query = _ips(ip, ip6)
        expected = _order(with_ip(mine, caches, ip, ip6))
        assert await _walk(client, query, member, 7) == expected, (ip, ip6)
    assert _order(with_ip(mine, caches, "10\\.", None)), "the project has no v4 address"


async def test_ip6_is_ignored_for_a_member_before_2_5(
    client: httpx.AsyncClient, snapshot: Snapshot
) -> None:
    project = str(_live(snapshot)[0]["project_id"])
    member = {"X-Auth-Token": f"member:{project}", "OpenStack-API-Version": "compute 2.4"}
    assert await _walk(client, "ip6=nothing", member, 500) == await _walk(client, "", member, 500)


async def test_an_invalid_pattern_is_a_400(client: httpx.AsyncClient) -> None:
    for query in ("ip=(", "ip6=[", "ip=a)"):
        response = await client.get(f"/v2.1/servers?all_tenants=1&{query}", headers=ADMIN)
        assert response.status_code == 400, (query, response.text)
        assert "badRequest" in response.json()


@pytest.mark.parametrize(
    "pattern",
    [
        "(?P<x>1)",
        "a{99999}",
        "\\d{1,1000}",
        "(?i)FD",
        "(?x)10 \\. # a comment",
        "(?<=1)0",
        "x*" * 60,
    ],
)
async def test_a_hard_pattern_is_never_a_server_error(
    client: httpx.AsyncClient, pattern: str
) -> None:
    for name in ("ip", "ip6"):
        query = urlencode([("all_tenants", "1"), (name, pattern)])
        response = await client.get(f"/v2.1/servers?{query}", headers=ADMIN)
        assert response.status_code in (200, 400), (name, pattern, response.text)
