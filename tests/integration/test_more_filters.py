"""Nova 34's remaining column filters on PostgreSQL and MariaDB cells, against an oracle.

``reservation_id``, ``launch_index``, ``created_at``, ``launched_at``, ``terminated_at``,
``auto_disk_config`` and ``progress`` are Nova ``REGEXP`` filters on the column's MySQL
text (``1``/``0`` for a boolean, ``YYYY-MM-DD HH:MM:SS`` for a timestamp); the oracle
applies Python's ``re.search`` to that text of the rows read straight from the cells.
``soft_deleted`` (admin) lets vm_state ``soft-delete`` rows in, with any non-empty value as
Nova; ``pinned_availability_zone`` is accepted and, as in Nova 34, filters nothing. Every
walk pages through next links and must equal the oracle's order exactly.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.apps import app_client
from tests.support.cellsets import CellSet
from tests.support.oracle import Snapshot, load_snapshot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ADMIN = {"X-Auth-Token": "admin:admin", "OpenStack-API-Version": "compute 2.90"}


@pytest.fixture(scope="module", params=["pg_cells", "mariadb_cells"])
def cell_set(request: pytest.FixtureRequest) -> CellSet:
    found: CellSet = request.getfixturevalue(request.param)
    return found


@pytest.fixture(scope="module")
async def snapshot(cell_set: CellSet) -> Snapshot:
    return await load_snapshot(cell_set)


@pytest.fixture(scope="module")
async def client(cell_set: CellSet) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(cell_set.settings(page_cache_ttl_s=0)) as http:
        yield http


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _order(rows: list[dict[str, object]]) -> list[str]:
    """created_at desc, uuid asc: the default order."""
    ordered = sorted(rows, key=lambda r: str(r["uuid"]))
    ordered.sort(key=lambda r: r["created_at"], reverse=True)  # type: ignore[arg-type,return-value]  # row values are SqlValue; these rows all hold a datetime
    return [str(r["uuid"]) for r in ordered]


async def _walk(client: httpx.AsyncClient, query: str, limit: int = 50) -> list[str]:
    url: str | None = f"/v2.1/servers?all_tenants=1&limit={limit}&{query}"
    out: list[str] = []
    while url is not None:
        response = await client.get(url, headers=ADMIN)
        assert response.status_code == 200, response.text
        body = response.json()
        out += [s["id"] for s in body["servers"]]
        links = body.get("servers_links", [])
        url = links[0]["href"].removeprefix("http://gateway.test") if links else None
    return out


LIVE = "deleted == 0 and vm_state != 'soft-delete'"


@pytest.mark.parametrize(
    ("param", "pattern"),
    [
        ("reservation_id", "^r-0"),
        ("launch_index", "^0$"),
        ("created_at", "^2024-0[1-6]"),
        ("created_at", " 1[0-2]:[0-9]{2}:[0-5]0$"),
        ("launched_at", "^2024-0[1-3]"),
        ("terminated_at", "."),
        ("auto_disk_config", "^1$"),
        ("progress", "^100$"),
    ],
)
async def test_regex_filters_on_non_text_columns(
    client: httpx.AsyncClient, snapshot: Snapshot, param: str, pattern: str
) -> None:
    live = [r for r in snapshot.rows if r["deleted"] == 0 and r["vm_state"] != "soft-delete"]
    matching = [r for r in live if (t := _text(r[param])) is not None and re.search(pattern, t)]
    got = await _walk(client, f"{param}={pattern}")
    assert got == _order(matching), (param, len(got), len(matching))
    if param != "terminated_at":
        assert matching, f"the seed has no row for {param}={pattern}"


@pytest.mark.parametrize("limit", [1, 7, 100])
async def test_created_at_pages_exactly(
    client: httpx.AsyncClient, snapshot: Snapshot, limit: int
) -> None:
    """The filtered column is the order's first key too: every page resumes after the
    last one's (created_at, uuid), with no server repeated or skipped."""
    live = [r for r in snapshot.rows if r["deleted"] == 0 and r["vm_state"] != "soft-delete"]
    pattern = "^2024-02-0[1-9]"
    matching = [r for r in live if re.search(pattern, _text(r["created_at"]) or "")]
    assert len(matching) > limit
    assert await _walk(client, f"created_at={pattern}", limit) == _order(matching)


async def test_soft_deleted(client: httpx.AsyncClient, snapshot: Snapshot) -> None:
    rows = snapshot.rows
    live = [r for r in rows if r["deleted"] == 0]
    hidden = [r for r in live if r["vm_state"] != "soft-delete"]
    assert len(hidden) < len(live), "the seed has no soft-deleted server"
    assert await _walk(client, "soft_deleted=true", 500) == _order(live)
    assert await _walk(client, "soft_deleted=false", 500) == _order(live)  # Nova: non-empty
    assert await _walk(client, "soft_deleted=", 500) == _order(hidden)
    gone = [r for r in rows if r["deleted"] != 0]
    assert await _walk(client, "deleted=true&soft_deleted=", 500) == _order(gone)


async def test_pinned_availability_zone_filters_nothing(client: httpx.AsyncClient) -> None:
    assert await _walk(client, "pinned_availability_zone=nowhere", 500) == await _walk(
        client, "", 500
    )
