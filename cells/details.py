"""The detail view's side data, read only for the rows a page returns (late materialization).

The keyset query reads narrow ``instances`` rows (:data:`VIEW_COLUMNS`); once the merge has
decided a page, a cell's client (:meth:`cells.client.CellClient.details`) reads every side
table of that cell with one batched query per :data:`BATCH` uuids (:func:`side_union`) and
folds the rows into a :class:`Details` per instance uuid (:func:`collect_rows`). The caller
runs it for every cell of the page concurrently.

What is read, as Nova reads it: the current flavor (``instance_extra``) and the network
model (``instance_info_caches``), soft-deleted or not (Nova's relationships do not filter
them), metadata and volumes (``block_device_mapping`` with a
``volume_id``) without soft-deleted rows, tags (2.26+), and the latest non-deleted fault
(the highest id, as Nova's ``instance_fault_get_by_instance_uuids(latest=True)``).
"""

from __future__ import annotations

import datetime as dt
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
from sqlalchemy.sql.elements import ColumnElement

from cells.novajson import Address, FlavorInfo, decode_flavor, decode_network_info
from cells.order import Row
from cells.schema import (
    block_device_mapping,
    instance_extra,
    instance_faults,
    instance_info_caches,
    instance_metadata,
    tags,
)

__all__ = [
    "BATCH",
    "VIEW_COLUMNS",
    "Details",
    "Fault",
    "Volume",
    "chunks",
    "collect",
    "collect_rows",
    "side_union",
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

BATCH = 500
"""Uuids per side-data query: a page is at most ``max_limit`` rows."""


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


def chunks(uuids: Sequence[str]) -> Iterable[list[str]]:
    """``uuids`` in lists of at most :data:`BATCH`."""
    for start in range(0, len(uuids), BATCH):
        yield list(uuids[start : start + BATCH])


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


def _member(array: bool) -> Callable[[ColumnElement[Any]], ColumnElement[bool]]:
    """``column IN :uuids``: with arrays ``column = ANY($1)``, one array parameter shared by
    every branch (an IN list binds each uuid once per branch: 6 × 500 parameters)."""
    if not array:
        expanding = bindparam("uuids", expanding=True, type_=String)
        return lambda column: column.in_(expanding)
    uuids = bindparam("uuids", type_=ARRAY(String))
    return lambda column: column == any_(uuids)


def side_union(with_tags: bool, array: bool) -> CompoundSelect[tuple[object, ...]]:
    """Every side table's rows for the uuids bound as ``uuids`` (a list) as one ``UNION
    ALL``: one round trip per cell. ``with_tags`` from microversion 2.26; ``array``: the
    executor binds a list as one array parameter
    (:attr:`~cells.executor.Executor.binds_arrays`)."""
    ie, ic, md = instance_extra.c, instance_info_caches.c, instance_metadata.c
    bdm, fault, tg = block_device_mapping.c, instance_faults.c, tags.c
    of = _member(array)
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
    if with_tags:
        parts.append(_side("tags", tg.resource_id, a=tg.tag).where(of(tg.resource_id)))
    return union_all(*parts)


def _split(rows: Iterable[Row]) -> dict[str, list[Sequence[object]]]:
    """The union's rows as :func:`collect` takes them: per side table, in Nova's order
    (metadata and volumes by id, tags by name)."""
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(str(row["kind"]), []).append(row)
    return {
        "flavor": [(r["uuid"], r["a"]) for r in out.get("flavor", ())],
        "network": [(r["uuid"], r["a"]) for r in out.get("network", ())],
        "metadata": [
            (r["uuid"], r["a"], r["b"]) for r in sorted(out.get("metadata", ()), key=_by_id)
        ],
        "fault": [
            (r["uuid"], r["id"], r["number"], r["a"], r["b"], r["when"])
            for r in out.get("fault", ())
        ],
        "volumes": [
            (r["uuid"], r["a"], r["number"]) for r in sorted(out.get("volumes", ()), key=_by_id)
        ],
        "tags": [(r["uuid"], r["a"]) for r in sorted(out.get("tags", ()), key=_by_tag)],
    }


def _by_id(row: Row) -> tuple[str, int]:
    return (str(row["uuid"]), _int(row["id"]))


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


def _by_tag(row: Row) -> tuple[str, str]:
    return (str(row["uuid"]), str(row["a"]))


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
    """Fold the side tables' rows (per table, as :func:`collect_rows` splits them) into a
    :class:`Details` per uuid (pure)."""
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


def collect_rows(rows: Iterable[Row], uuids: Iterable[str]) -> dict[str, Details]:
    """:func:`side_union`'s rows folded into a :class:`Details` per uuid (pure)."""
    return collect(_split(rows), uuids)
