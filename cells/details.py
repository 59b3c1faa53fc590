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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cells.fanout import drop_connection
from cells.novajson import Address, FlavorInfo, decode_flavor, decode_network_info
from cells.schema import (
    block_device_mapping,
    instance_extra,
    instance_faults,
    instance_info_caches,
    instance_metadata,
    tags,
)

__all__ = ["VIEW_COLUMNS", "Details", "Fault", "Volume", "collect", "fetch_details"]

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

_FAULT_COLUMNS = [
    instance_faults.c[name]
    for name in ("instance_uuid", "id", "code", "message", "details", "created_at")
]
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


def _queries(chunk: list[str], version: tuple[int, int]) -> dict[str, Select[tuple[object, ...]]]:
    ie, ic, md = instance_extra.c, instance_info_caches.c, instance_metadata.c
    bdm, fault, tg = block_device_mapping.c, instance_faults.c, tags.c
    queries: dict[str, Select[tuple[object, ...]]] = {
        # Nova joins instance_extra and instance_info_caches whatever their deleted flag
        # (a deleted server still shows its flavor and addresses); not so metadata.
        "flavor": select(ie.instance_uuid, ie.flavor).where(ie.instance_uuid.in_(chunk)),
        "network": select(ic.instance_uuid, ic.network_info).where(ic.instance_uuid.in_(chunk)),
        "metadata": select(md.instance_uuid, md.key, md.value)
        .where(md.instance_uuid.in_(chunk), md.deleted == 0)
        .order_by(md.instance_uuid, md.id),
        "fault": select(*_FAULT_COLUMNS).where(fault.instance_uuid.in_(chunk), fault.deleted == 0),
        "volumes": select(bdm.instance_uuid, bdm.volume_id, bdm.delete_on_termination)
        .where(bdm.instance_uuid.in_(chunk), bdm.deleted == 0, bdm.volume_id.is_not(None))
        .order_by(bdm.instance_uuid, bdm.id),
    }
    if version >= (2, 26):
        queries["tags"] = (
            select(tg.resource_id, tg.tag)
            .where(tg.resource_id.in_(chunk))
            .order_by(tg.resource_id, tg.tag)
        )
    return queries


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


async def _read(
    conn: AsyncConnection, uuids: Sequence[str], version: tuple[int, int]
) -> dict[str, list[Sequence[object]]]:
    rows: dict[str, list[Sequence[object]]] = {}
    for chunk in _chunks(uuids):
        for name, query in _queries(chunk, version).items():
            result = await conn.execute(query)
            rows.setdefault(name, []).extend(tuple(r) for r in result.all())
    return rows


async def fetch_details(
    engine: AsyncEngine, uuids: Sequence[str], version: tuple[int, int] = (2, 1)
) -> dict[str, Details]:
    """Side data for ``uuids`` (instances of the cell behind ``engine``), one batched query
    per side table on one connection; tags only from microversion 2.26."""
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
