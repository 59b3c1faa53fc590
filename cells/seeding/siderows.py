"""Seed rows for Nova's side tables, as Nova writes them (pure: no I/O).

For each instance :class:`SideRows` produces its ``instance_extra`` (the flavor as a
serialized versioned object), ``instance_info_caches`` (the network model: 1–2 VIFs, IPv4
and IPv6 fixed IPs, some floating IPs), ``instance_metadata`` (0–3 keys, sometimes a
removed, soft-deleted one), ``instance_system_metadata`` (the image's properties as
Nova copies them, ``image_*``: some that the 2.98 view shows, some it does not), ``tags``
(0–3), ``instance_faults`` (several on ERROR
instances, the latest with the highest id) and ``block_device_mapping`` (a volume root for
boot-from-volume instances, 1–2 data volumes for some, sometimes a detached one).

A deleted instance's side rows are soft-deleted with it (``deleted`` = the row's own id)
and its tags are gone, as Nova's ``instance_destroy`` does.

Over the house size on purpose: one generator per Nova side table, drawn from one random
stream in a fixed order (the order is part of what a seed reproduces).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from random import Random

import orjson

__all__ = [
    "SIDE_COLUMNS",
    "FlavorSpec",
    "Instance",
    "SideRows",
    "flavor_object",
    "serialized_flavor",
]

Row = tuple[object, ...]

SIDE_COLUMNS: dict[str, tuple[str, ...]] = {
    "instance_extra": (
        "id", "instance_uuid", "flavor", "pci_requests", "keypairs", "created_at",
        "updated_at", "deleted_at", "deleted",
    ),
    "instance_info_caches": (
        "id", "instance_uuid", "network_info", "created_at", "updated_at", "deleted_at",
        "deleted",
    ),
    "instance_metadata": (
        "id", "instance_uuid", "key", "value", "created_at", "updated_at", "deleted_at",
        "deleted",
    ),
    "instance_system_metadata": (
        "id", "instance_uuid", "key", "value", "created_at", "updated_at", "deleted_at",
        "deleted",
    ),
    "tags": ("resource_id", "tag"),
    "instance_faults": (
        "id", "instance_uuid", "code", "message", "details", "host", "created_at",
        "updated_at", "deleted_at", "deleted",
    ),
    "block_device_mapping": (
        "id", "instance_uuid", "uuid", "source_type", "destination_type", "device_type",
        "disk_bus", "boot_index", "device_name", "delete_on_termination", "volume_id",
        "volume_size", "image_id", "no_device", "attachment_id", "encrypted", "created_at",
        "updated_at", "deleted_at", "deleted",
    ),
}  # fmt: skip
"""Column order of the side-table rows, per table name."""


@dataclass(frozen=True)
class FlavorSpec:
    """The flavor fields Nova serializes into ``instance_extra.flavor``."""

    id: int
    flavorid: str
    name: str
    memory_mb: int
    vcpus: int
    root_gb: int
    ephemeral_gb: int = 0
    swap: int = 0
    extra_specs: tuple[tuple[str, str], ...] = ()


def flavor_object(f: FlavorSpec) -> dict[str, object]:
    """Nova's ``Flavor`` versioned object as its primitive (``obj_to_primitive``)."""
    data = {
        "id": f.id, "name": f.name, "memory_mb": f.memory_mb, "vcpus": f.vcpus,
        "root_gb": f.root_gb, "ephemeral_gb": f.ephemeral_gb, "flavorid": f.flavorid,
        "swap": f.swap, "rxtx_factor": 1.0, "vcpu_weight": 0, "disabled": False,
        "is_public": True, "extra_specs": dict(f.extra_specs), "description": None,
        "created_at": "2024-01-01T00:00:00Z", "updated_at": None, "deleted_at": None,
        "deleted": False,
    }  # fmt: skip
    return {
        "nova_object.name": "Flavor",
        "nova_object.namespace": "nova",
        "nova_object.version": "1.2",
        "nova_object.data": data,
        "nova_object.changes": sorted(data),
    }


def serialized_flavor(f: FlavorSpec) -> str:
    """``instance_extra.flavor``: Nova's ``{"cur": <Flavor object>, "old": null, "new": null}``."""
    return orjson.dumps({"cur": flavor_object(f), "old": None, "new": None}).decode()


def _keypairs(key_name: str | None, user: str) -> str:
    """``instance_extra.keypairs``: a serialized ``KeyPairList``."""
    objects = []
    if key_name is not None:
        key = {"name": key_name, "user_id": user, "type": "ssh", "fingerprint": "aa:bb"}
        objects.append({"nova_object.name": "KeyPair", "nova_object.data": key})
    data = {"objects": objects}
    return orjson.dumps({"nova_object.name": "KeyPairList", "nova_object.data": data}).decode()


@dataclass(frozen=True)
class Instance:
    """What the side rows need to know about their instance."""

    uuid: str
    project_index: int
    user: str
    created: datetime
    deleted_at: datetime | None
    vm_state: str
    launched: bool
    boot_from_volume: bool
    host: str | None
    key_name: str | None
    flavor_json: str


_META_KEYS = ("role", "env", "owner", "ha", "note", "backup")
_META_VALUES = ("web", "prod", "alice", "true", "ne pas éteindre", "staging", "nightly")
_TAGS = ("prod", "db", "staging", "web", "ci", "Ünï", "blue", "green")
# 0–3 distinct keys (tags), the empty set weighted like the size distribution in Nova
# clouds: most instances have none.
_META_SETS = ((),) * 12 + tuple(
    tuple(_META_KEYS[(i + j) % len(_META_KEYS)] for j in range(1 + i % 3)) for i in range(12)
)
_TAG_SETS = ((),) * 24 + tuple(
    tuple(_TAGS[(i + 3 * j) % len(_TAGS)] for j in range(1 + i % 3)) for i in range(12)
)
# What Nova copies from a Glance image into system_metadata: the 2.98 view shows the image
# properties Nova knows (os_distro, hw_disk_bus) and not the image's own fields (min_disk,
# disk_format) nor a NULL value.
_IMAGE_SYSTEM_METADATA = (
    ("image_base_image_ref", "0b1e3c3e-5f7b-4c55-8a8e-6a3f3b1f2d10"),
    ("image_container_format", "bare"),
    ("image_disk_format", "qcow2"),
    ("image_min_disk", "1"),
    ("image_min_ram", "0"),
    ("image_hw_disk_bus", "virtio"),
    ("image_os_distro", "cirros"),
    ("image_hw_rng_model", None),
)
_FAULTS = (
    (500, "No valid host was found. There are not enough hosts available.", "Traceback ..."),
    (500, "Build of instance aborted: Volume did not finish being created", "Traceback ..."),
    (400, "Image is not a bootable image", "Check the image properties"),
    (404, "Flavor could not be found", ""),
)


class SideRows:
    """Per-cell id counters and the generation of side rows for one instance at a time."""

    def __init__(self, rng: Random) -> None:
        self.rng = rng
        self.ids = {name: 0 for name in SIDE_COLUMNS}
        self._keypairs: dict[tuple[str | None, str], str] = {}
        self._networks: dict[tuple[int, str], str] = {}

    def _next(self, table: str) -> int:
        self.ids[table] += 1
        return self.ids[table]

    def _uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"

    def rows(self, inst: Instance, out: dict[str, list[Row]]) -> None:
        """Append ``inst``'s side rows to ``out`` (table name → rows)."""
        rng = self.rng
        gone = inst.deleted_at
        stamps = (inst.created, gone or inst.created)

        def soft(row_id: int) -> tuple[object, object]:
            return (gone, row_id if gone else 0)

        i = self._next("instance_extra")
        keypairs = self._keypairs.get((inst.key_name, inst.user))
        if keypairs is None:
            keypairs = self._keypairs[inst.key_name, inst.user] = _keypairs(
                inst.key_name, inst.user
            )
        out["instance_extra"].append(
            (i, inst.uuid, inst.flavor_json, "[]", keypairs, *stamps, *soft(i))
        )
        i = self._next("instance_info_caches")
        network = self._network_info(inst) if inst.launched and not gone else "[]"
        out["instance_info_caches"].append((i, inst.uuid, network, *stamps, *soft(i)))
        for key in rng.choice(_META_SETS):
            i = self._next("instance_metadata")
            out["instance_metadata"].append(
                (i, inst.uuid, key, rng.choice(_META_VALUES), *stamps, *soft(i))
            )
        if rng.random() < 0.05:  # a key the user removed: soft-deleted, never shown
            i = self._next("instance_metadata")
            at = inst.created + timedelta(hours=1)
            out["instance_metadata"].append((i, inst.uuid, "removed", "x", inst.created, at, at, i))
        if not inst.boot_from_volume:  # no rng: the other tables' rows stay as they were
            for key, value in _IMAGE_SYSTEM_METADATA:
                i = self._next("instance_system_metadata")
                out["instance_system_metadata"].append(
                    (i, inst.uuid, key, value, *stamps, *soft(i))
                )
        if not gone:
            for tag in rng.choice(_TAG_SETS):
                out["tags"].append((inst.uuid, tag))
        faults = 0
        if inst.vm_state == "error":
            faults = rng.randint(1, 3)
        elif rng.random() < 0.02:  # an old failure on a healthy instance: not shown
            faults = 1
        for n in range(faults):
            i = self._next("instance_faults")
            code, message, details = rng.choice(_FAULTS)
            at = inst.created + timedelta(seconds=10 * (n + 1))
            out["instance_faults"].append(
                (i, inst.uuid, code, message, details, inst.host, at, None, *soft(i))
            )
        self._volumes(inst, out, stamps, soft)

    def _volumes(
        self,
        inst: Instance,
        out: dict[str, list[Row]],
        stamps: tuple[datetime, datetime],
        soft: Callable[[int], tuple[object, object]],
    ) -> None:
        rng = self.rng
        volumes: list[tuple[int | None, str, str, bool, int]] = []
        if inst.boot_from_volume:
            volumes.append((0, "image", "/dev/vda", rng.random() < 0.5, 20))
        if rng.random() < 0.15:
            for n in range(rng.randint(1, 2)):
                volumes.append((None, "volume", f"/dev/vd{'bc'[n]}", False, 10 * (n + 1)))
        for boot_index, source, device, delete, size in volumes:
            i = self._next("block_device_mapping")
            out["block_device_mapping"].append(
                (i, inst.uuid, self._uuid(), source, "volume", "disk", "virtio", boot_index,
                 device, delete, self._uuid(), size, None, False, self._uuid(), False,
                 *stamps, *soft(i))
            )  # fmt: skip
        if not inst.deleted_at and rng.random() < 0.03:  # a detached volume
            i = self._next("block_device_mapping")
            at = inst.created + timedelta(days=1)
            out["block_device_mapping"].append(
                (i, inst.uuid, self._uuid(), "volume", "volume", "disk", "virtio", None,
                 "/dev/vdz", False, self._uuid(), 1, None, False, None, False, inst.created,
                 at, at, i)
            )  # fmt: skip

    def _network_info(self, inst: Instance) -> str:
        """Nova's network model JSON (a list of VIFs), written out as text: the seeder
        produces millions of these, and a template is several times faster than dicts."""
        rng = self.rng
        vifs = []
        p = inst.project_index % 256
        for n in range(1 if rng.random() < 0.7 else 2):
            bits = rng.getrandbits(40)
            mac = f"fa:16:3e:{bits >> 16 & 255:02x}:{bits >> 8 & 255:02x}:{bits & 255:02x}"
            v4 = f"10.{p}.{bits >> 24 & 255}.{(bits >> 32) % 253 + 2}"
            floating = ""
            if rng.random() < 0.3:
                floating = _IP % (f"172.24.4.{rng.randrange(2, 255)}", "floating", 4, "")
            subnets = _SUBNET % (f"10.{p}.0.0/16", f"10.{p}.0.1", 4, _fixed(v4, 4, floating), 4)
            if rng.random() < 0.6:
                v6 = _fixed(f"fd00:{p + 1:x}::{bits & 0xFFFF:x}", 6, "")
                subnets += "," + _SUBNET % (f"fd00:{p + 1:x}::/64", f"fd00:{p + 1:x}::1", 6, v6, 6)
            label = "private" if n == 0 or rng.random() < 0.3 else "storage"
            network_id = self._networks.get((p, label))
            if network_id is None:
                network_id = self._networks[p, label] = self._uuid()
            port = self._uuid()
            vifs.append(_VIF % (port, mac, network_id, label, subnets, port[:11], port))
        return "[" + ",".join(vifs) + "]"


_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}
_IP = '{"address":"%s","type":"%s","version":%d,"meta":{}%s}'
_SUBNET = (
    '{"cidr":"%s","dns":[],"gateway":{"address":"%s","type":"gateway","version":%d,'
    '"meta":{}},"ips":[%s],"routes":[],"version":%d,"meta":{}}'
)
_VIF = (
    '{"id":"%s","address":"%s","network":{"id":"%s","bridge":"br-int","label":"%s",'
    '"subnets":[%s],"meta":{"injected":false,"mtu":1450}},"type":"ovs",'
    '"details":{"port_filter":true},"devname":"tap%s","ovs_interfaceid":"%s",'
    '"qbh_params":null,"qbg_params":null,"active":true,"vnic_type":"normal","profile":{},'
    '"preserve_on_delete":false,"meta":{}}'
)


def _fixed(address: str, version: int, floating: str) -> str:
    return _IP % (address, "fixed", version, f',"floating_ips":[{floating}]')
