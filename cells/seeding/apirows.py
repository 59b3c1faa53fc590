"""Seed rows for the API database's scheduling tables, as Nova writes them (pure: no I/O).

Every instance gets its ``request_specs`` row: the ``RequestSpec`` versioned object
serialized as Nova stores it, with the flavor, the image (none for boot-from-volume, as
Nova leaves ``image.id`` unset then), the availability zone the user asked for (only
``az2`` is ever asked for explicitly; the rest were scheduled to the default zone without
asking, so the spec holds ``null``) and the user. A quarter of the multi-create bursts
(decided by their reservation id) were booted into a server group: one
``instance_groups`` row per burst, one ``instance_group_member`` row per instance.

Everything is derived from the instance rows, so no random draw is added and the rest of
the seed data stays what it was.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime

import orjson

from cells.seeding.dataset import FLAVORS, INSTANCE_COLUMNS, Row
from cells.seeding.siderows import flavor_object

__all__ = [
    "API_COLUMNS",
    "ApiRows",
    "serialized_request_spec",
]

API_COLUMNS: dict[str, tuple[str, ...]] = {
    "request_specs": ("id", "instance_uuid", "spec", "created_at", "updated_at"),
    "instance_groups": ("id", "user_id", "project_id", "uuid", "name", "created_at", "updated_at"),
    "instance_group_member": ("id", "instance_uuid", "group_id", "created_at", "updated_at"),
}
"""Column order of the rows :class:`ApiRows` writes, per table, in the order to write them
(a group before its members)."""

_COL = {name: i for i, name in enumerate(INSTANCE_COLUMNS)}
_GROUP_NAMESPACE = uuid.UUID("3d0c1f5e-62a4-4b8e-9f71-0c2d6e8a4b19")
_REQUESTED_ZONES = frozenset({"az2"})
_FLAVOR_OBJECTS = {f.id: flavor_object(f) for f in FLAVORS}


@functools.cache
def _image(image_ref: str) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "boot-volume" if not image_ref else "image",
        "container_format": "bare",
        "disk_format": "qcow2",
        "min_disk": 0,
        "min_ram": 0,
        "status": "active",
    }
    if image_ref:
        data["id"] = image_ref
    return {
        "nova_object.name": "ImageMeta",
        "nova_object.namespace": "nova",
        "nova_object.version": "1.8",
        "nova_object.data": data,
        "nova_object.changes": sorted(data),
    }


def _group(group_uuid: str, name: str) -> dict[str, object]:
    data = {"uuid": group_uuid, "name": name, "policy": "anti-affinity", "members": None}
    return {
        "nova_object.name": "InstanceGroup",
        "nova_object.namespace": "nova",
        "nova_object.version": "1.11",
        "nova_object.data": data,
        "nova_object.changes": sorted(data),
    }


def serialized_request_spec(instance: Row, group: tuple[str, str] | None = None) -> str:
    """``request_specs.spec`` of ``instance`` (a row in ``INSTANCE_COLUMNS`` order)."""
    az = instance[_COL["availability_zone"]]
    data: dict[str, object] = {
        "instance_uuid": instance[_COL["uuid"]],
        "project_id": instance[_COL["project_id"]],
        "user_id": instance[_COL["user_id"]],
        "availability_zone": az if az in _REQUESTED_ZONES else None,
        "flavor": _FLAVOR_OBJECTS[int(str(instance[_COL["instance_type_id"]]))],
        "image": _image(str(instance[_COL["image_ref"]] or "")),
        "num_instances": 1,
        "is_bfv": not instance[_COL["image_ref"]],
        "instance_group": _group(*group) if group else None,
        "scheduler_hints": {"group": [group[0]]} if group else {},
    }
    return orjson.dumps(
        {
            "nova_object.name": "RequestSpec",
            "nova_object.namespace": "nova",
            "nova_object.version": "1.14",
            "nova_object.data": data,
            "nova_object.changes": sorted(data),
        }
    ).decode()


@dataclass(frozen=True, slots=True)
class _Group:
    id: int
    uuid: str
    name: str


@dataclass
class ApiRows:
    """Id counters and the burst being grouped, across the instances of one seeding run."""

    spec_id: int = 0
    group_id: int = 0
    member_id: int = 0
    _burst: tuple[str, _Group | None] = ("", None)

    def rows(self, instance: Row, out: dict[str, list[Row]]) -> None:
        """Append ``instance``'s rows to ``out`` (table name → rows); instances come in
        creation order, so a burst's instances are consecutive."""
        created = instance[_COL["created_at"]]
        assert isinstance(created, datetime)
        group = self._group_of(instance, created, out)
        self.spec_id += 1
        uuid_ = instance[_COL["uuid"]]
        spec = serialized_request_spec(instance, (group.uuid, group.name) if group else None)
        out["request_specs"].append((self.spec_id, uuid_, spec, created, None))
        if group is not None:
            self.member_id += 1
            out["instance_group_member"].append((self.member_id, uuid_, group.id, created, None))

    def _group_of(
        self, instance: Row, created: datetime, out: dict[str, list[Row]]
    ) -> _Group | None:
        reservation = str(instance[_COL["reservation_id"]])
        if reservation == self._burst[0]:
            return self._burst[1]
        group = None
        suffix = reservation.removeprefix("r-")
        if int(suffix, 16) % 4 == 0:
            self.group_id += 1
            # The id keeps the uuid unique even when two bursts draw the same reservation.
            group_uuid = str(uuid.uuid5(_GROUP_NAMESPACE, f"{reservation}/{self.group_id}"))
            group = _Group(self.group_id, group_uuid, f"group-{suffix}")
            project, user = instance[_COL["project_id"]], instance[_COL["user_id"]]
            out["instance_groups"].append(
                (group.id, user, project, group.uuid, group.name, created, None)
            )
        self._burst = (reservation, group)
        return group
