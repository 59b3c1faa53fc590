"""The detail view's side data, read only for the rows a page returns (late materialization).

The keyset query reads narrow ``instances`` rows (:data:`VIEW_COLUMNS`); once the merge has
decided a page, a cell's client (:meth:`cells.client.CellClient.details`) reads every side
table of that cell with one batched query per :data:`BATCH` uuids (:func:`side_union`) and
folds the rows into a :class:`Details` per instance uuid (:func:`collect_rows`). The caller
runs it for every cell of the page concurrently.

What is read, as Nova reads it: the current flavor (``instance_extra``) and the network
model (``instance_info_caches``), soft-deleted or not (Nova's relationships do not filter
them), metadata and volumes (``block_device_mapping`` with a
``volume_id``) without soft-deleted rows, tags (2.26+), the latest non-deleted fault
(the highest id, as Nova's ``instance_fault_get_by_instance_uuids(latest=True)``), and
from 2.73 the system metadata the views read (``locked_reason``, and the image's
``image_*`` properties for 2.98), not soft-deleted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cells.novajson import Address, FlavorInfo, decode_flavor, decode_network_info
from cells.order import Row
from cells.sidequery import side_union

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
    system_metadata: tuple[tuple[str, str | None], ...] = ()
    # The host's nova-compute service (2.16 host_status): 2 forced down, 1 disabled, 0
    # neither, and when it was last seen up (its creation if never).
    service: tuple[int, dt.datetime | None] | None = None


def chunks(uuids: Sequence[str]) -> Iterable[list[str]]:
    """``uuids`` in lists of at most :data:`BATCH`."""
    for start in range(0, len(uuids), BATCH):
        yield list(uuids[start : start + BATCH])


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
        "service": [
            (r["uuid"], r["number"], r["when"]) for r in sorted(out.get("service", ()), key=_by_id)
        ],
        "sysmeta": [
            (r["uuid"], r["a"], r["b"]) for r in sorted(out.get("sysmeta", ()), key=_by_id)
        ],
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
    system_metadata: list[tuple[str, str | None]] = field(default_factory=list)
    service: tuple[int, dt.datetime | None] | None = None

    def build(self) -> Details:
        return Details(
            self.flavor,
            self.addresses,
            tuple(self.metadata),
            tuple(self.tags),
            self.fault[1] if self.fault else None,
            tuple(self.volumes),
            tuple(self.system_metadata),
            self.service,
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
    for uuid, flags, seen in rows.get("service", ()):
        # Nova takes the first of the host's nova-compute rows (here: the lowest id).
        if (b := out.get(str(uuid))) is not None and b.service is None:
            b.service = (int(str(flags)), seen if isinstance(seen, dt.datetime) else None)
    for uuid, key, value in rows.get("sysmeta", ()):
        if (b := out.get(str(uuid))) is not None and key is not None:
            b.system_metadata.append((str(key), _opt_str(value)))
    return {uuid: b.build() for uuid, b in out.items()}


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def collect_rows(rows: Iterable[Row], uuids: Iterable[str]) -> dict[str, Details]:
    """:func:`side_union`'s rows folded into a :class:`Details` per uuid (pure)."""
    return collect(_split(rows), uuids)
