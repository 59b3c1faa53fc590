"""The seed data generator: instance rows, their mappings and side rows (pure: no I/O).

See :mod:`cells.seeding.dataset` for what the data looks like and why; this module draws it from
``random.Random(plan.seed)``, so a plan always yields the same rows, whatever the chunk
size; and the same instances and mappings (all but per-cell ids), whatever the number of
cells, which the benchmark's sharded vs unsharded comparison relies on.

Over the house size on purpose: the draws are one random stream in a fixed order (a seed
must reproduce the same rows), which one module keeps visible.
"""

from __future__ import annotations

import re
from bisect import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import accumulate
from random import Random
from uuid import UUID

from cells.seeding.apirows import API_COLUMNS, ApiRows
from cells.seeding.dataset import (
    EPOCH,
    FLAVORS,
    SIDE_COLUMNS,
    Row,
    SeedPlan,
    cell_weights,
    project_weights,
)
from cells.seeding.siderows import Instance, SideRows, serialized_flavor

__all__ = ["Chunk", "generate", "iter_chunks"]

_YEAR_S = 365 * 24 * 3600
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


@dataclass(frozen=True)
class Chunk:
    """A slice of the generated data: instance and side rows per cell position, mappings
    and the API database's other rows.

    ``instances[i]`` and ``side[i]`` (table name → rows) belong to the cell at position
    ``i``, whose ``cell_mappings.id`` (and so the mapping rows' ``cell_id``) is ``i + 1``;
    ``api`` holds the request specs and server groups (table name → rows, see
    :mod:`cells.seeding.apirows`).
    """

    instances: tuple[list[Row], ...]
    side: tuple[dict[str, list[Row]], ...]
    mappings: list[Row] = field(default_factory=list)
    api: dict[str, list[Row]] = field(default_factory=lambda: {name: [] for name in API_COLUMNS})

    @classmethod
    def empty(cls, n_cells: int) -> Chunk:
        """A chunk with no rows for ``n_cells`` cells."""
        return cls(
            tuple([] for _ in range(n_cells)),
            tuple({name: [] for name in SIDE_COLUMNS} for _ in range(n_cells)),
        )

    def __len__(self) -> int:
        return len(self.mappings)


def iter_chunks(n_cells: int, plan: SeedPlan, chunk_size: int = 20_000) -> Iterator[Chunk]:
    """Generate ``plan.instances`` instances over ``n_cells`` cells, ``chunk_size`` at a time."""
    if n_cells < 1:
        raise ValueError("need at least one cell")
    chunk = Chunk.empty(n_cells)
    generator = _Generator(n_cells, plan)
    api = ApiRows()
    for cell, instance, mapping, side in generator.rows():
        chunk.instances[cell].append(instance)
        chunk.mappings.append(mapping)
        generator.side[cell].rows(side, chunk.side[cell])
        api.rows(instance, chunk.api)
        if len(chunk) >= chunk_size:
            yield chunk
            chunk = Chunk.empty(n_cells)
    if len(chunk):
        yield chunk


def generate(n_cells: int, plan: SeedPlan) -> Chunk:
    """All the generated data at once (for small plans and tests)."""
    return next(iter_chunks(n_cells, plan, chunk_size=plan.instances + 1), None) or Chunk.empty(
        n_cells
    )


_SIDE_STREAM = 0x5EED_51DE  # the side rows' seed is the plan's, XOR this


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
        self.flavor_json = [serialized_flavor(f) for f in FLAVORS]
        # Side rows draw from a stream of their own: how many numbers they take depends on
        # the layout (per-cell key pair and network caches), and the instances must not.
        side_rng = Random(plan.seed ^ _SIDE_STREAM)
        self.side = [SideRows(side_rng) for _ in range(n_cells)]
        self.flavor_cum = list(accumulate(_FLAVOR_WEIGHTS))
        self.next_id = [0] * n_cells
        self.hostnames: dict[str, str] = {}

    def rows(self) -> Iterator[tuple[int, Row, Row, Instance]]:
        """``(cell position, instance row, mapping row, side-row input)`` for every
        instance, oldest first."""
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
            reservation = f"r-{rng.getrandbits(32):08x}"
            for i in range(size):
                cell = self._pick_cell() if spans_cells else home
                n = number if same_name else number + i
                name = f"{base}-{n:03d}" if padded else f"{base}-{n}"
                batch = (reservation, i)
                yield self._instance(cell, produced + 1, created, project, p, user, name, batch)
                produced += 1

    def _pick_cell(self) -> int:
        return bisect(self.cell_cum, self.rng.random() * self.cell_cum[-1])

    def _hostname(self, name: str, uuid: str) -> str:
        """Nova's ``sanitize_hostname`` of the display name: Latin-1 only, ``[ _.]`` → ``-``,
        other non-word characters dropped (accented Latin letters stay), lowercased;
        ``Server-<uuid>`` (Nova's default, capital S) when nothing is left."""
        hostname = self.hostnames.get(name)
        if hostname is None:
            latin = name.encode("latin-1", "ignore").decode("latin-1")
            hostname = re.sub(r"[^\w.-]+", "", re.sub(r"[ _.]", "-", latin)).lower().strip(".-")
            self.hostnames[name] = hostname
        return hostname or f"Server-{uuid}"

    def _instance(
        self,
        cell: int,
        mapping_id: int,
        created: datetime,
        project: str,
        project_index: int,
        user: str,
        name: str,
        batch: tuple[str, int],
    ) -> tuple[int, Row, Row, Instance]:
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
        compute_id: int | None = None
        if vm_state not in _NO_HOST or deleted:
            compute_id = rng.randrange(len(_HOSTS))
            host, node = _HOSTS[compute_id]
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
        flavor = FLAVORS[f]
        key_name = rng.choice(_KEY_NAMES)
        image_ref = "" if rand() < 0.05 else rng.choice(_IMAGES)  # "": boot from volume
        instance: Row = (
            iid,
            uuid,
            project,
            user,
            name,
            None if description < 0.4 else ("" if description < 0.5 else rng.choice(_DESCRIPTIONS)),
            self._hostname(name, uuid),
            host,
            node,
            vm_state,
            task_state,
            power_state,
            image_ref,
            kernel,
            kernel,
            flavor.id,
            "nova" if az < 0.7 else ("az2" if az < 0.85 else None),
            key_name,
            batch[1],
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
            flavor.memory_mb,
            flavor.vcpus,
            flavor.root_gb,
            flavor.ephemeral_gb,
            compute_id,
            batch[0],
            host,
            None if key_name is None else f"ssh-ed25519 AAAAC3Nza {key_name}",
            False,
            False,
            1 if deleted else 0,
            False,
            "x86_64",
        )
        mapping: Row = (mapping_id, uuid, cell + 1, project, user, deleted, created, deleted_at)
        side = Instance(
            uuid, project_index, user, created, deleted_at, vm_state,
            launched_at is not None, image_ref == "", host, key_name, self.flavor_json[f],
        )  # fmt: skip
        return cell, instance, mapping, side
