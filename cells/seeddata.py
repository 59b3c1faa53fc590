"""Deterministic, adversarial seed data for the API and cell databases (pure: no I/O).

The rows are shaped for testing sort and paging code, not just for filling tables: instances
are created in bursts that share one ``created_at`` (often across cells), sortable columns
hold NULLs, names mix case and non-ASCII code points and repeat across projects, and a few
projects (``demo`` above all) own most of the instances while the cells are skewed too.

Rows are plain tuples in the column order given by :data:`INSTANCE_COLUMNS`,
:data:`MAPPING_COLUMNS` and :data:`FLAVOR_COLUMNS`, ready for ``COPY`` or ``executemany``.
Everything is drawn from one ``random.Random(plan.seed)``, so a plan always yields the same
rows, whatever the chunk size.
"""

from __future__ import annotations

import re
from bisect import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate
from random import Random
from typing import TypeAlias
from uuid import UUID

import orjson

__all__ = [
    "EPOCH",
    "FLAVORS",
    "FLAVOR_COLUMNS",
    "INSTANCE_COLUMNS",
    "MAPPING_COLUMNS",
    "Chunk",
    "Flavor",
    "Row",
    "SeedPlan",
    "cell_weights",
    "flavor_rows",
    "generate",
    "iter_chunks",
    "project_weights",
]

Row: TypeAlias = tuple[object, ...]
"""One table row, in the column order of the matching ``*_COLUMNS`` tuple."""

EPOCH = datetime(2024, 1, 1)
"""Naive UTC start of the creation timeline (the timeline spans about a year from here)."""

INSTANCE_COLUMNS = (
    "id", "uuid", "project_id", "user_id", "display_name", "display_description", "hostname",
    "host", "node", "vm_state", "task_state", "power_state", "image_ref", "kernel_id",
    "ramdisk_id", "instance_type_id", "availability_zone", "key_name", "launch_index", "locked",
    "locked_by", "auto_disk_config", "root_device_name", "access_ip_v4", "access_ip_v6",
    "config_drive", "progress", "launched_at", "terminated_at", "created_at", "updated_at",
    "deleted_at", "deleted", "flavor", "network_info", "metadata", "tags",
)  # fmt: skip
MAPPING_COLUMNS = (
    "id", "instance_uuid", "cell_id", "project_id", "user_id", "queued_for_delete",
    "created_at", "updated_at",
)  # fmt: skip
FLAVOR_COLUMNS = (
    "id", "flavorid", "name", "memory_mb", "vcpus", "root_gb", "ephemeral_gb", "swap",
    "disabled", "is_public", "created_at", "updated_at",
)  # fmt: skip

_YEAR_S = 365 * 24 * 3600


@dataclass(frozen=True)
class SeedPlan:
    """How much data to generate, and how it is spread."""

    instances: int = 30_000
    projects: int = 12
    """Number of projects besides ``demo`` and ``admin``."""
    seed: int = 1
    """Seed of the ``random.Random`` every value is drawn from."""
    empty_cells: int = 1
    """How many of the last cells get no instances (only when there are at least 3 cells)."""
    deleted_fraction: float = 0.05

    def __post_init__(self) -> None:
        if self.instances < 0 or self.projects < 0 or self.empty_cells < 0:
            raise ValueError("instances, projects and empty_cells must be >= 0")
        if not 0.0 <= self.deleted_fraction <= 1.0:
            raise ValueError("deleted_fraction must be within [0, 1]")


@dataclass(frozen=True)
class Flavor:
    """One entry of the flavor catalog (``flavors.id`` is :attr:`id`)."""

    id: int
    flavorid: str
    name: str
    memory_mb: int
    vcpus: int
    root_gb: int
    ephemeral_gb: int = 0
    swap: int = 0
    extra_specs: tuple[tuple[str, str], ...] = ()

    def as_json(self) -> str:
        """The ``instances.flavor`` column value: the flavor as embedded in an instance."""
        return orjson.dumps(
            {
                "id": self.id,
                "flavorid": self.flavorid,
                "name": self.name,
                "memory_mb": self.memory_mb,
                "vcpus": self.vcpus,
                "root_gb": self.root_gb,
                "ephemeral_gb": self.ephemeral_gb,
                "swap": self.swap,
                "extra_specs": dict(self.extra_specs),
            }
        ).decode()


FLAVORS = (
    Flavor(1, "1", "m1.tiny", 512, 1, 1),
    Flavor(2, "2", "m1.small", 2048, 1, 20),
    Flavor(3, "3", "m1.medium", 4096, 2, 40),
    Flavor(4, "4", "m1.large", 8192, 4, 80),
    Flavor(5, "5", "m1.xlarge", 16384, 8, 160),
    Flavor(6, "6", "m1.2xlarge", 32768, 16, 320),
    Flavor(
        7, "8f2c6f1e-3b7a-4d52-9a51-2f0c4e7d9b13", "gpu.large", 65536, 16, 100,
        ephemeral_gb=200, swap=1024, extra_specs=(("hw:cpu_policy", "dedicated"),),
    ),
)  # fmt: skip
"""The flavor catalog; ids are explicit and start at 1."""
_FLAVOR_WEIGHTS = (10, 30, 30, 15, 8, 4, 3)

_IMAGES = (
    "0b1e3c3e-5f7b-4c55-8a8e-6a3f3b1f2d10",  # cirros
    "5d2b7e4a-1c9f-4e0b-b7a4-3e8f2c6d9a21",  # ubuntu
    "9a6c1f3d-2b8e-4f7a-a1c5-7d4e0b3f8c32",  # debian
    "c3e8a5b1-7f2d-4a9c-8e6b-1d0f5a2c7e43",  # centos
    "e7f4d2c9-6a1b-4c3e-9f8d-5b2a0c1e6d54",  # windows
)
_NAME_BASES = (
    "web", "Web", "db", "DB", "api", "worker", "cache", "lb", "bastion", "build", "k8s-node",
    "etl", "test", "alpha", "Zeta", "café", "サーバー", "ñandú",
)  # fmt: skip
_DESCRIPTIONS = ("web frontend", "primary database", "build agent", "scratch", "Ünïcode ☃ box")
_KEY_NAMES = (None, "mykey", "deploy", "alice-laptop", "ci")
_METADATA = tuple(
    orjson.dumps(m).decode()
    for m in (
        {"role": "web"},
        {"env": "prod", "owner": "alice"},
        {"ha": "true"},
        {"env": "staging"},
        {"note": "ne pas éteindre"},
    )
)
_TAGS = tuple(
    orjson.dumps(t).decode()
    for t in (["prod"], ["db", "prod"], ["staging"], ["web", "prod"], ["ci"])
)
_USERS = ("alice", "bob", "carol", "dave", "erin", "frank")
_HOSTS = tuple((f"compute-{n:02d}", f"compute-{n:02d}.example.org") for n in range(1, 25))

# (vm_state, power_state, weight) for live instances. Nova's power states: 0 NOSTATE,
# 1 RUNNING, 3 PAUSED, 4 SHUTDOWN, 7 SUSPENDED.
_STATES = (
    ("active", 1, 780),
    ("stopped", 4, 80),
    ("building", 0, 20),
    ("error", 0, 20),
    ("paused", 3, 20),
    ("suspended", 7, 20),
    ("shelved_offloaded", 4, 30),
    ("resized", 1, 10),
    ("rescued", 1, 10),
    ("soft-delete", 4, 10),
)
_STATE_CUM = tuple(accumulate(w for _, _, w in _STATES))
_ACTIVE_TASKS = (
    (0.03, "rebooting"),
    (0.035, "resize_prep"),
    (0.04, "rebuilding"),
    (0.043, "deleting"),
)
_NO_HOST = frozenset({"building", "error", "shelved_offloaded"})
_NOT_LAUNCHED = frozenset({"building", "error"})


def cell_weights(n_cells: int, plan: SeedPlan) -> list[int]:
    """Relative instance share of each cell: halving per cell, the last ``empty_cells`` zero.

    Cells are only left empty when there are at least three, and at least one cell always
    gets instances.
    """
    empty = min(plan.empty_cells, n_cells - 1) if n_cells >= 3 else 0
    filled = n_cells - empty
    return [2 ** (filled - 1 - i) for i in range(filled)] + [0] * empty


def project_weights(plan: SeedPlan) -> list[tuple[str, float]]:
    """``(project_id, share)``: ``demo`` ~30%, ``admin`` a few, the rest Zipf-skewed."""
    width = max(2, len(str(plan.projects)))
    zipf = [1.0 / k**1.1 for k in range(1, plan.projects + 1)]
    total = sum(zipf) or 1.0
    others = [(f"proj-{k:0{width}d}", 0.699 * w / total) for k, w in enumerate(zipf, 1)]
    return [("demo", 0.30), ("admin", 0.001), *others]


def flavor_rows() -> list[Row]:
    """The ``flavors`` rows for :data:`FLAVORS`."""
    return [
        (f.id, f.flavorid, f.name, f.memory_mb, f.vcpus, f.root_gb, f.ephemeral_gb, f.swap,
         False, True, EPOCH, None)
        for f in FLAVORS
    ]  # fmt: skip


@dataclass(frozen=True)
class Chunk:
    """A slice of the generated data: instance rows per cell position, and their mappings.

    ``instances[i]`` belongs to the cell at position ``i``, whose ``cell_mappings.id`` (and
    so the mapping rows' ``cell_id``) is ``i + 1``.
    """

    instances: tuple[list[Row], ...]
    mappings: list[Row] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.mappings)


def iter_chunks(n_cells: int, plan: SeedPlan, chunk_size: int = 20_000) -> Iterator[Chunk]:
    """Generate ``plan.instances`` instances over ``n_cells`` cells, ``chunk_size`` at a time."""
    if n_cells < 1:
        raise ValueError("need at least one cell")
    chunk = Chunk(tuple([] for _ in range(n_cells)))
    for cell, instance, mapping in _Generator(n_cells, plan).rows():
        chunk.instances[cell].append(instance)
        chunk.mappings.append(mapping)
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = Chunk(tuple([] for _ in range(n_cells)))
    if len(chunk):
        yield chunk


def generate(n_cells: int, plan: SeedPlan) -> Chunk:
    """All the generated data at once (for small plans and tests)."""
    return next(iter_chunks(n_cells, plan, chunk_size=plan.instances + 1), None) or Chunk(
        tuple([] for _ in range(n_cells))
    )


class _Generator:
    """The state of one generation run: the random source and per-cell id counters."""

    def __init__(self, n_cells: int, plan: SeedPlan) -> None:
        self.plan = plan
        self.rng = rng = Random(plan.seed)
        weights = [w for w in cell_weights(n_cells, plan) if w]
        self.cell_cum = list(accumulate(weights))
        self.projects = project_weights(plan)
        self.project_cum = list(accumulate(share for _, share in self.projects))
        self.users: dict[str, list[str]] = {"demo": ["demo", "demo", "demo", "alice", "bob"]}
        self.users["admin"] = ["admin"]
        for project, _ in self.projects[2:]:
            self.users[project] = rng.sample(_USERS, rng.randint(1, 4))
        self.flavor_json = [f.as_json() for f in FLAVORS]
        self.flavor_cum = list(accumulate(_FLAVOR_WEIGHTS))
        self.next_id = [0] * n_cells
        self.hostnames: dict[str, str] = {}

    def rows(self) -> Iterator[tuple[int, Row, Row]]:
        """``(cell position, instance row, mapping row)`` for every instance, oldest first."""
        rng = self.rng
        total = self.plan.instances
        mean_burst = 0.6 * 1 + 0.4 * 11  # see the burst size below
        mean_gap_s = _YEAR_S * mean_burst / max(total, 1)
        t = 0.0
        produced = 0
        while produced < total:
            # Bursts are multi-creates: one project, one user, one timestamp, names in sequence.
            size = min(1 if rng.random() < 0.6 else rng.randint(2, 20), total - produced)
            t += rng.expovariate(1.0 / mean_gap_s)
            created = EPOCH + timedelta(seconds=int(t))
            if rng.random() < 0.2:
                created = created.replace(microsecond=rng.randrange(1, 1_000_000))
            p = bisect(self.project_cum, rng.random() * self.project_cum[-1])
            project = self.projects[min(p, len(self.projects) - 1)][0]
            user = rng.choice(self.users[project])
            spans_cells = rng.random() < 0.3
            home = self._pick_cell()
            base = rng.choice(_NAME_BASES)
            number = rng.randint(1, 200)
            padded = rng.random() < 0.3
            same_name = size > 1 and rng.random() < 0.2
            for i in range(size):
                cell = self._pick_cell() if spans_cells else home
                n = number if same_name else number + i
                name = f"{base}-{n:03d}" if padded else f"{base}-{n}"
                yield self._instance(cell, produced + 1, created, project, p, user, name)
                produced += 1

    def _pick_cell(self) -> int:
        return bisect(self.cell_cum, self.rng.random() * self.cell_cum[-1])

    def _hostname(self, name: str, uuid: str) -> str:
        """Nova-like sanitising: lowercase ASCII; ``server-<uuid>`` when no letter survives."""
        hostname = self.hostnames.get(name)
        if hostname is None:
            hostname = re.sub(r"[^a-z0-9-]", "", name.lower()).strip("-")
            hostname = hostname if re.search("[a-z]", hostname) else ""
            self.hostnames[name] = hostname
        return hostname or f"server-{uuid}"

    def _instance(
        self,
        cell: int,
        mapping_id: int,
        created: datetime,
        project: str,
        project_index: int,
        user: str,
        name: str,
    ) -> tuple[int, Row, Row]:
        rng = self.rng
        rand = rng.random
        self.next_id[cell] += 1
        iid = self.next_id[cell]
        uuid = str(UUID(int=rng.getrandbits(128), version=4))
        deleted = rand() < self.plan.deleted_fraction
        vm_state, power_state, _ = _STATES[bisect(_STATE_CUM, rand() * _STATE_CUM[-1])]
        task_state: str | None = None
        if vm_state == "active":
            r = rand()
            task_state = next((task for limit, task in _ACTIVE_TASKS if r < limit), None)
        elif vm_state == "building":
            task_state = "spawning" if rand() < 0.8 else "scheduling"
        elif vm_state == "stopped" and rand() < 0.02:
            task_state = "powering-on"

        launched_at = None
        if vm_state not in _NOT_LAUNCHED or deleted:
            launched_at = created + timedelta(
                seconds=rng.randint(5, 90), microseconds=rng.randrange(1_000_000)
            )
        host = node = None
        if vm_state not in _NO_HOST or deleted:
            host, node = rng.choice(_HOSTS)
        if vm_state == "building":
            updated_at = created + timedelta(seconds=rng.randint(0, 30))
        elif rand() < 0.1:
            updated_at = created
        else:
            updated_at = (launched_at or created) + timedelta(seconds=rng.randint(0, 60 * 86400))
        deleted_at = None
        if deleted:
            vm_state, task_state, power_state = "deleted", None, 0
            deleted_at = created + timedelta(seconds=rng.randint(3600, 120 * 86400))
            updated_at = deleted_at

        r = rand()
        progress: int | None = 0 if r < 0.8 else (None if r < 0.9 else 100)
        if vm_state == "building":
            progress = rng.choice((0, None, rng.randint(10, 90)))
        locked = rand() < 0.03
        f = bisect(self.flavor_cum, rand() * self.flavor_cum[-1])
        kernel = "" if rand() < 0.85 else None
        az = rand()
        description = rand()
        instance: Row = (
            iid,
            uuid,
            project,
            user,
            name,
            None if description < 0.4 else ("" if description < 0.5 else rng.choice(_DESCRIPTIONS)),
            None if rand() < 0.1 else self._hostname(name, uuid),
            host,
            node,
            vm_state,
            task_state,
            power_state,
            "" if rand() < 0.03 else rng.choice(_IMAGES),
            kernel,
            kernel,
            FLAVORS[f].id,
            "nova" if az < 0.7 else ("az2" if az < 0.85 else None),
            rng.choice(_KEY_NAMES),
            0,
            locked,
            ("owner" if rand() < 0.7 else "admin") if locked else None,
            rand() < 0.2,
            "/dev/vda",
            f"203.0.113.{rng.randrange(1, 255)}" if rand() < 0.05 else None,
            f"2001:db8::{rng.getrandbits(16):x}" if rand() < 0.03 else None,
            "True" if rand() < 0.2 else "",
            progress,
            launched_at,
            deleted_at,
            created,
            updated_at,
            deleted_at,
            iid if deleted else 0,
            self.flavor_json[f],
            "{}" if deleted or launched_at is None else self._addresses(project_index),
            "{}" if rand() < 0.75 else rng.choice(_METADATA),
            "[]" if rand() < 0.7 else rng.choice(_TAGS),
        )
        mapping: Row = (mapping_id, uuid, cell + 1, project, user, deleted, created, deleted_at)
        return cell, instance, mapping

    def _addresses(self, project_index: int) -> str:
        """Nova's ``addresses`` shape: a fixed IPv4, maybe a floating IP and an IPv6 address."""
        rng = self.rng
        bits = rng.getrandbits(40)
        mac = f"fa:16:3e:{bits >> 16 & 255:02x}:{bits >> 8 & 255:02x}:{bits & 255:02x}"
        ip = f"10.{project_index % 256}.{bits >> 24 & 255}.{(bits >> 32) % 253 + 2}"
        entries = [_address(4, ip, "fixed", mac)]
        if rng.random() < 0.3:
            entries.append(_address(4, f"172.24.4.{rng.randrange(2, 255)}", "floating", mac))
        if rng.random() < 0.2:
            entries.append(_address(6, f"fd00:{project_index:x}::{bits & 0xFFFF:x}", "fixed", mac))
        return orjson.dumps({"private": entries}).decode()


def _address(version: int, addr: str, kind: str, mac: str) -> dict[str, object]:
    return {
        "version": version,
        "addr": addr,
        "OS-EXT-IPS:type": kind,
        "OS-EXT-IPS-MAC:mac_addr": mac,
    }
