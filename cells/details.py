"""The detail view's side data, read only for the rows a page returns (late materialization).

The keyset query reads narrow ``instances`` rows (:data:`VIEW_COLUMNS`); once the merge has
decided a page, :func:`fetch_details` reads each side table of one cell with one batched
query (``WHERE instance_uuid IN (...)``) and returns a :class:`Details` per instance uuid.
The caller runs it for every cell of the page concurrently.

What is read, as Nova reads it: the current flavor (``instance_extra``) and the network
model (``instance_info_caches``), soft-deleted or not (Nova's relationships do not filter
them), metadata and volumes (``block_device_mapping`` with a
``volume_id``) without soft-deleted rows, tags (2.26+), and the latest non-deleted fault
(the highest id, as Nova's ``instance_fault_get_by_instance_uuids(latest=True)``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    DateTime,
    Integer,
    Select,
    String,
    Text,
    any_,
    bindparam,
    cast,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from cells.fanout import CellFailed, CellTimedOut, drop_connection
from cells.faults import DATABASE_ERRORS, Blame, CellMisconfigured, blame
from cells.novajson import Address, FlavorInfo, decode_flavor, decode_network_info
from cells.rawsql import RawSql, compile_for_asyncpg, driver_fetch
from cells.schema import (
    block_device_mapping,
    instance_extra,
    instance_faults,
    instance_info_caches,
    instance_metadata,
    tags,
)

__all__ = [
    "VIEW_COLUMNS",
    "Details",
    "Fault",
    "Volume",
    "collect",
    "fetch_details",
    "read_details",
]

# Columns Nova's views read from ``instances`` (not user_data, key_data and the like).
VIEW_COLUMNS = (
    "id", "uuid", "display_name", "display_description", "project_id", "user_id", "hostname",
    "host", "node", "vm_state", "task_state", "power_state", "image_ref", "kernel_id",
    "ramdisk_id", "instance_type_id", "availability_zone", "key_name", "launch_index",
    "reservation_id", "locked", "locked_by", "auto_disk_config", "root_device_name",
    "access_ip_v4", "access_ip_v6", "config_drive", "progress", "launched_at", "terminated_at",
    "created_at", "updated_at", "deleted_at", "deleted",
)  # fmt: skip
"""The ``instances`` columns a detail row carries."""

_BATCH = 500  # uuids per IN list: a page is at most max_limit rows


@dataclass(frozen=True, slots=True)
class Fault:
    """An instance's latest fault."""

    code: int
    message: str | None
    details: str | None
    created_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Volume:
    """An attached volume (a block device mapping with a ``volume_id``)."""

    volume_id: str
    delete_on_termination: bool


@dataclass(frozen=True, slots=True)
class Details:
    """One instance's side data; empty when the tables have nothing for it."""

    flavor: FlavorInfo | None = None
    addresses: tuple[tuple[str, tuple[Address, ...]], ...] = ()
    metadata: tuple[tuple[str, str], ...] = ()
    tags: tuple[str, ...] = ()
    fault: Fault | None = None
    volumes: tuple[Volume, ...] = field(default=())


def _chunks(uuids: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(uuids), _BATCH):
        yield list(uuids[start : start + _BATCH])


def _side(
    kind: str,
    uuid: ColumnElement[Any],
    *,
    id_: ColumnElement[Any] | None = None,
    a: ColumnElement[Any] | None = None,
    b: ColumnElement[Any] | None = None,
    number: ColumnElement[Any] | None = None,
    when: ColumnElement[Any] | None = None,
) -> Select[tuple[object, ...]]:
    """One side table's rows in the shape every branch of the union shares:
    ``(kind, uuid, id, a, b, number, when)``, NULL where a table has no such column."""
    return select(
        literal(kind, String).label("kind"),
        uuid.label("uuid"),
        (id_ if id_ is not None else cast(null(), Integer)).label("id"),
        (cast(a, Text) if a is not None else cast(null(), Text)).label("a"),
        (cast(b, Text) if b is not None else cast(null(), Text)).label("b"),
        (cast(number, Integer) if number is not None else cast(null(), Integer)).label("number"),
        (when if when is not None else cast(null(), DateTime)).label("when"),
    )


def _member(chunk: list[str], array: bool) -> Callable[[ColumnElement[Any]], ColumnElement[bool]]:
    """``column IN chunk``: on PostgreSQL ``column = ANY($1)``, one array parameter shared by
    every branch (an IN list binds each uuid once per branch: 6 × 500 parameters)."""
    if not array:
        return lambda column: column.in_(chunk)
    uuids = bindparam("uuids", chunk, type_=ARRAY(String))
    return lambda column: column == any_(uuids)


def _union(
    chunk: list[str], version: tuple[int, int], array: bool
) -> CompoundSelect[tuple[object, ...]]:
    """Every side table's rows for ``chunk`` as one ``UNION ALL``: one round trip per cell."""
    ie, ic, md = instance_extra.c, instance_info_caches.c, instance_metadata.c
    bdm, fault, tg = block_device_mapping.c, instance_faults.c, tags.c
    of = _member(chunk, array)
    parts = [
        # Nova joins instance_extra and instance_info_caches whatever their deleted flag
        # (a deleted server still shows its flavor and addresses); not so metadata.
        _side("flavor", ie.instance_uuid, a=ie.flavor).where(of(ie.instance_uuid)),
        _side("network", ic.instance_uuid, a=ic.network_info).where(
            of(ic.instance_uuid)
        ),
        _side("metadata", md.instance_uuid, id_=md.id, a=md.key, b=md.value).where(
            of(md.instance_uuid), md.deleted == 0
        ),
        _side(
            "fault",
            fault.instance_uuid,
            id_=fault.id,
            a=fault.message,
            b=fault.details,
            number=fault.code,
            when=fault.created_at,
        ).where(of(fault.instance_uuid), fault.deleted == 0),
        _side(
            "volumes", bdm.instance_uuid, id_=bdm.id, a=bdm.volume_id,
            number=bdm.delete_on_termination,
        ).where(of(bdm.instance_uuid), bdm.deleted == 0, bdm.volume_id.is_not(None)),
    ]  # fmt: skip
    if version >= (2, 26):
        parts.append(_side("tags", tg.resource_id, a=tg.tag).where(of(tg.resource_id)))
    return union_all(*parts)


def _split(rows: Iterable[Sequence[Any]]) -> dict[str, list[Sequence[object]]]:
    """The union's rows as :func:`collect` takes them: per side table, in Nova's order
    (metadata and volumes by id, tags by name)."""
    out: dict[str, list[Sequence[Any]]] = {}
    for row in rows:
        out.setdefault(row[0], []).append(row)
    return {
        "flavor": [(r[1], r[3]) for r in out.get("flavor", ())],
        "network": [(r[1], r[3]) for r in out.get("network", ())],
        "metadata": [(r[1], r[3], r[4]) for r in sorted(out.get("metadata", ()), key=_by_id)],
        "fault": [(r[1], r[2], r[5], r[3], r[4], r[6]) for r in out.get("fault", ())],
        "volumes": [(r[1], r[3], r[5]) for r in sorted(out.get("volumes", ()), key=_by_id)],
        "tags": [(r[1], r[3]) for r in sorted(out.get("tags", ()), key=_by_tag)],
    }


def _by_id(row: Sequence[Any]) -> tuple[str, int]:
    return (str(row[1]), int(row[2]))


def _by_tag(row: Sequence[Any]) -> tuple[str, str]:
    return (str(row[1]), str(row[3]))


@dataclass(slots=True)
class _Builder:
    flavor: FlavorInfo | None = None
    addresses: tuple[tuple[str, tuple[Address, ...]], ...] = ()
    metadata: list[tuple[str, str]] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    fault: tuple[int, Fault] | None = None
    volumes: list[Volume] = field(default_factory=list)

    def build(self) -> Details:
        return Details(
            self.flavor,
            self.addresses,
            tuple(self.metadata),
            tuple(self.tags),
            self.fault[1] if self.fault else None,
            tuple(self.volumes),
        )


def collect(
    rows: Mapping[str, Sequence[Sequence[object]]], uuids: Iterable[str]
) -> dict[str, Details]:
    """Fold the side tables' rows (per query name, as :func:`fetch_details` reads them) into
    a :class:`Details` per uuid (pure)."""
    out = {uuid: _Builder() for uuid in uuids}
    for uuid, flavor in rows.get("flavor", ()):
        if (b := out.get(str(uuid))) is not None:
            b.flavor = decode_flavor(flavor)
    for uuid, network in rows.get("network", ()):
        if (b := out.get(str(uuid))) is not None:
            b.addresses = decode_network_info(network)
    for uuid, key, value in rows.get("metadata", ()):
        if (b := out.get(str(uuid))) is not None and key is not None:
            b.metadata.append((str(key), "" if value is None else str(value)))
    for uuid, tag in rows.get("tags", ()):
        if (b := out.get(str(uuid))) is not None:
            b.tags.append(str(tag))
    for uuid, fault_id, code, message, details, created in rows.get("fault", ()):
        b = out.get(str(uuid))
        if b is None or not isinstance(fault_id, int) or not isinstance(code, int):
            continue
        if b.fault is None or fault_id > b.fault[0]:
            created_at = created if isinstance(created, dt.datetime) else None
            b.fault = (fault_id, Fault(code, _opt_str(message), _opt_str(details), created_at))
    for uuid, volume_id, delete in rows.get("volumes", ()):
        if (b := out.get(str(uuid))) is not None and volume_id:
            b.volumes.append(Volume(str(volume_id), bool(delete)))
    return {uuid: b.build() for uuid, b in out.items()}


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


@functools.cache
def _asyncpg_union(tags: bool) -> RawSql:
    """The union as asyncpg SQL, compiled once per process for each shape (with tags or
    not)."""
    return compile_for_asyncpg(_union(["-"], (2, 26) if tags else (2, 1), array=True))


async def _read(
    conn: AsyncConnection, uuids: Sequence[str], version: tuple[int, int]
) -> dict[str, list[Sequence[object]]]:
    rows: list[Sequence[Any]] = []
    if conn.dialect.driver == "asyncpg":
        # Straight on asyncpg, as the keyset query: building, caching and wrapping the
        # statement in SQLAlchemy cost more CPU than the query itself on a short page.
        union = _asyncpg_union(version >= (2, 26))
        for chunk in _chunks(uuids):
            rows.extend(await driver_fetch(conn, union, uuids=chunk))
        return _split(rows)
    for chunk in _chunks(uuids):
        query = _union(chunk, version, array=conn.dialect.name == "postgresql")
        rows.extend((await conn.execute(query)).all())
    return _split(rows)


async def fetch_details(
    engine: AsyncEngine, uuids: Sequence[str], version: tuple[int, int] = (2, 1)
) -> dict[str, Details]:
    """Side data for ``uuids`` (instances of the cell behind ``engine``): one ``UNION ALL``
    of the side tables per 500 uuids, on one connection; tags only from microversion 2.26."""
    if not uuids:
        return {}
    conn = await engine.connect()
    try:
        rows = await _read(conn, uuids, version)
    except BaseException:  # failed or cancelled mid-query: never back to the pool
        await asyncio.shield(drop_connection(conn))
        raise
    await conn.close()
    return collect(rows, uuids)


async def read_details(
    engine: AsyncEngine,
    label: str,
    uuids: Sequence[str],
    version: tuple[int, int],
    timeout_s: float,
    started: float | None = None,
) -> dict[str, Details] | CellFailed | CellTimedOut:
    """:func:`fetch_details` within ``timeout_s``, a failure classified as for the keyset
    query (:func:`cells.faults.blame`): a schema fault raises
    :class:`~cells.faults.CellMisconfigured` (a 500, never an outage), any other database
    error is :class:`CellFailed`, the deadline :class:`CellTimedOut`. ``started``
    (``time.perf_counter()``, default now) is where their ``elapsed_ms`` counts from."""
    begun = time.perf_counter() if started is None else started
    try:
        async with asyncio.timeout(timeout_s):
            return await fetch_details(engine, uuids, version)
    except DATABASE_ERRORS as exc:
        fault = blame(exc)
        if fault.blame is Blame.CONFIG:
            raise CellMisconfigured(label, fault.message) from exc
        return CellFailed(fault.message, (time.perf_counter() - begun) * 1000)
    except TimeoutError:
        return CellTimedOut(timeout_s, (time.perf_counter() - begun) * 1000)
