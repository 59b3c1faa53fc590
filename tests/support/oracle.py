"""An independent oracle for the server listing: read every row, filter and sort in Python.

Nothing here reuses the gateway's query building, keyset, merge or state mapping: rows are
read with a plain ``select(instances)`` from every cell database, the filters are applied
with Python comparisons and :func:`re.search`, and the order comes from a ``cmp_to_key``
comparator written out key by key. Tests compare the concatenated HTTP pages with
:func:`expected_uuids`.

The NULL rule the gateway documents is mirrored on purpose: NULL is the lowest value of
every key (first ascending, last descending); strings compare by code point. Regular
expressions match as Nova's do on the cells' backend (:func:`regex_matches`).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from cells.registry import async_url
from cells.schema import flavors, instances

if TYPE_CHECKING:
    from tests.support.cellsets import CellSet

__all__ = [
    "BASE",
    "OracleQuery",
    "Snapshot",
    "auth",
    "compare_rows",
    "expected_uuids",
    "load_snapshot",
    "query_from_params",
    "regex_matches",
    "walk",
    "with_query",
]

BASE = "http://gateway.test"
SOFT_DELETE = "soft-delete"
# Written independently of gateway.statuses: only the statuses the tests use. All are a
# vm_state's default status, so Nova filters on vm_state alone.
STATUS_TO_VM_STATE = {
    "ACTIVE": "active",
    "SHUTOFF": "stopped",
    "ERROR": "error",
    "BUILD": "building",
}

Record = dict[str, object]


def auth(token: str) -> dict[str, str]:
    """Headers for the noauth mode (``user:project``)."""
    return {"X-Auth-Token": token}


@dataclass(frozen=True)
class Snapshot:
    """Every instance row of every cell, and the flavor catalog (flavorid → ids)."""

    rows: list[Record]
    flavor_ids: dict[str, frozenset[int]]

    def by_uuid(self, uuid: str) -> Record:
        return next(row for row in self.rows if row["uuid"] == uuid)


async def _read_all(url: str, table_query: object) -> list[Record]:
    engine = create_async_engine(async_url(url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(table_query)  # type: ignore[arg-type]  # a Core Select of untyped columns; execute's overloads are typed rows
            return [dict(row) for row in result.mappings().all()]
    finally:
        await engine.dispose()


async def load_snapshot(cell_set: CellSet) -> Snapshot:
    """Read ALL instance rows of every cell, plus the flavors, straight from the databases."""
    rows: list[Record] = []
    for cell in cell_set.cells:
        rows.extend(await _read_all(cell.url, select(instances)))
    catalog: dict[str, set[int]] = {}
    for flavor in await _read_all(cell_set.api_url, select(flavors.c.id, flavors.c.flavorid)):
        catalog.setdefault(str(flavor["flavorid"]), set()).add(int(flavor["id"]))  # type: ignore[call-overload]  # a row value is SqlValue; flavors.id is an int
    return Snapshot(rows, {k: frozenset(v) for k, v in catalog.items()})


@dataclass(frozen=True)
class OracleQuery:
    """What one listing asks for, in plain terms.

    ``project_id`` ``None`` means every project. ``deleted``: ``False`` the default (live,
    not soft-deleted), ``True`` only deleted or soft-deleted, ``None`` no deleted filter
    (what ``changes-since`` implies).
    """

    project_id: str | None
    sort: tuple[tuple[str, str], ...] = (("created_at", "desc"), ("uuid", "asc"))
    statuses: tuple[str, ...] = ()
    name: str | None = None
    user_id: str | None = None
    image: str | None = None
    flavor: str | None = None
    changes_since: dt.datetime | None = None
    deleted: bool | None = False
    mysql_regex: bool = False


def regex_matches(pattern: str, value: str, mysql: bool = False) -> bool:
    """Whether ``value`` matches ``pattern`` (unanchored) as Nova matches it: on MySQL
    ``REGEXP`` with every ``|`` escaped first, under ``utf8_general_ci`` (case-insensitive);
    elsewhere as given, case-sensitively."""
    if mysql:
        return re.search(pattern.replace("|", "\\|"), value, re.IGNORECASE) is not None
    return re.search(pattern, value) is not None


def _parse_ts(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    return parsed


def query_from_params(
    params: Sequence[tuple[str, str]], project: str, backend: str = "postgresql"
) -> OracleQuery:
    """The oracle query for the subset of parameters the tests send, from ``project``'s view
    (``backend``: the cells', for the regex rule).

    Only the parameters the tests use are understood; anything else is an error here, so
    a test cannot silently send a filter the oracle ignores.
    """
    admin = project == "admin"
    keys: list[str] = []
    dirs: list[str] = []
    statuses: list[str] = []
    single: dict[str, str] = {}
    for name, value in params:
        if name == "sort_key":
            keys.append(value)
        elif name == "sort_dir":
            dirs.append(value)
        elif name == "status":
            statuses.append(value.upper())
        elif name in {"limit", "marker"}:
            continue
        elif name in {
            "name", "user_id", "image", "flavor", "changes-since", "deleted", "all_tenants",
            "project_id", "tenant_id",
        }:  # fmt: skip
            single[name] = value
        else:
            raise ValueError(f"the oracle does not understand {name!r}")
    # Nova defaults the key and the direction separately (a lone sort_dir applies to
    # created_at), appends uuid asc, then pads the missing directions with the first one:
    # with sort_key=a&sort_key=b the order is a desc, b asc, uuid desc.
    keys = keys or ["created_at"]
    dirs = dirs or ["desc"]
    assert len(dirs) <= len(keys), "more sort_dir than sort_key is a 400, not a walk"
    if "uuid" not in keys:
        keys, dirs = [*keys, "uuid"], [*dirs, "asc"]
    dirs += [dirs[0]] * (len(keys) - len(dirs))
    sort = tuple(zip(keys, dirs, strict=True))
    all_tenants = admin and single.get("all_tenants", "0").lower() in {"", "1", "true", "t", "yes"}
    scope: str | None = project
    if all_tenants:
        scope = single.get("project_id") or single.get("tenant_id")
    # Non-admins may only use the 2.1 whitelist (name, status, image, flavor, changes-since).
    allowed = {"name", "image", "flavor", "changes-since"}
    if admin:
        allowed |= {"user_id", "deleted"}

    def get(name: str) -> str | None:
        return single.get(name) if name in allowed else None

    since = get("changes-since")
    deleted: bool | None = False
    if since is not None:
        deleted = None
    if (flag := get("deleted")) is not None:
        deleted = flag.lower() in {"1", "true", "t", "yes", "y", "on"}
    return OracleQuery(
        project_id=scope,
        sort=sort,
        statuses=tuple(statuses),
        name=get("name"),
        user_id=get("user_id"),
        image=get("image"),
        flavor=get("flavor"),
        changes_since=_parse_ts(since) if since is not None else None,
        deleted=deleted,
        mysql_regex=backend == "mysql",
    )


def _matches(row: Record, q: OracleQuery, flavor_ids: dict[str, frozenset[int]]) -> bool:
    if q.project_id is not None and row["project_id"] != q.project_id:
        return False
    if q.deleted is False:
        if row["deleted"] != 0 or row["vm_state"] == SOFT_DELETE:
            return False
    elif q.deleted is True and not (row["deleted"] != 0 or row["vm_state"] == SOFT_DELETE):
        return False
    if q.statuses:
        wanted = {STATUS_TO_VM_STATE[s] for s in q.statuses}
        if row["vm_state"] not in wanted:
            return False
    if q.name is not None:
        name = row["display_name"]
        if name is None or not regex_matches(q.name, str(name), q.mysql_regex):
            return False
    if q.user_id is not None and row["user_id"] != q.user_id:
        return False
    if q.image is not None and row["image_ref"] != q.image:
        return False
    if q.flavor is not None and row["instance_type_id"] not in flavor_ids.get(q.flavor, ()):
        return False
    if q.changes_since is not None:
        updated = row["updated_at"]
        if updated is None or updated < q.changes_since:  # type: ignore[operator]  # row values are SqlValue; updated_at is a datetime or None
            return False
    return True


def _compare_values(a: object, b: object) -> int:
    """NULL lowest; otherwise the natural Python order (code points for strings)."""
    if a is None and b is None:
        return 0
    if a is None:
        return -1
    if b is None:
        return 1
    if a < b:  # type: ignore[operator]  # sort values of one column share a type; SqlValue does not say so
        return -1
    if a > b:  # type: ignore[operator]  # sort values of one column share a type; SqlValue does not say so
        return 1
    return 0


def _comparator(sort: Sequence[tuple[str, str]]) -> functools.partial[int]:
    def compare(keys: Sequence[tuple[str, str]], a: Record, b: Record) -> int:
        for name, direction in keys:
            c = _compare_values(a[name], b[name])
            if c:
                return c if direction == "asc" else -c
        return 0  # the sort ends with uuid (query_from_params)

    return functools.partial(compare, tuple(sort))


def compare_rows(q: OracleQuery) -> Callable[[Record, Record], int]:
    """The listing order of ``q`` as a three-way comparison of two rows (uuid breaks ties)."""
    return _comparator(q.sort)


def expected_uuids(snapshot: Snapshot, q: OracleQuery, after: str | None = None) -> list[str]:
    """The uuids the full listing must return, in order.

    With ``after`` (a marker uuid, which need not match ``q`` itself: a deleted instance
    still marks a position), only the rows strictly after that instance's position.
    """
    compare = _comparator(q.sort)
    rows = [row for row in snapshot.rows if _matches(row, q, snapshot.flavor_ids)]
    rows.sort(key=functools.cmp_to_key(compare))
    if after is not None:
        marker = snapshot.by_uuid(after)
        rows = [row for row in rows if compare(row, marker) > 0]
    return [str(row["uuid"]) for row in rows]


def with_query(path: str, params: Iterable[tuple[str, str]]) -> str:
    """``path?query`` with the parameters in exactly the given order.

    httpx groups repeated keys when given ``params=``; building the query by hand keeps
    interleavings such as ``sort_key, sort_dir, sort_key, sort_dir``.
    """
    query = urlencode(list(params))
    return f"{path}?{query}" if query else path


@dataclass
class Walk:
    """What following ``servers_links`` produced."""

    uuids: list[str]
    pages: list[int]
    next_hrefs: list[str]


async def walk(
    client: httpx.AsyncClient,
    path: str,
    params: Iterable[tuple[str, str]],
    token: str,
    *,
    max_pages: int = 100_000,
    headers: dict[str, str] | None = None,
) -> Walk:
    """Follow ``servers_links`` from ``path?params`` to the end; every page must be a 200."""
    request_headers = {**auth(token), **(headers or {})}
    response = await client.get(with_query(path, params), headers=request_headers)
    result = Walk([], [], [])
    for _ in range(max_pages):
        assert response.status_code == 200, (response.status_code, response.text)
        body = response.json()
        servers = body["servers"]
        result.uuids.extend(server["id"] for server in servers)
        result.pages.append(len(servers))
        links = body.get("servers_links")
        if not links:
            return result
        assert servers, "a next link on an empty page"
        assert [link["rel"] for link in links] == ["next"]
        href = links[0]["href"]
        assert href.startswith(BASE), href
        result.next_hrefs.append(href)
        response = await client.get(href.removeprefix(BASE), headers=request_headers)
    raise AssertionError(f"walk of {path} did not end within {max_pages} pages")
