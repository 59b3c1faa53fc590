"""Deterministic, adversarial seed data for the API and cell databases (pure: no I/O).

The rows are shaped for testing sort and paging code, not just for filling tables: instances
are created in bursts that share one ``created_at`` (often across cells), sortable columns
hold NULLs, names mix case and non-ASCII code points and repeat across projects, and a few
projects (``demo`` above all) own most of the instances while the cells are skewed too.

Rows are plain tuples in the column order given by :data:`INSTANCE_COLUMNS`,
:data:`MAPPING_COLUMNS`, :data:`FLAVOR_COLUMNS` and :data:`~cells.seeding.siderows.SIDE_COLUMNS`,
ready for ``COPY`` or ``executemany``. Only values Nova itself writes: ``hostname`` is never
NULL, ``created_at`` always set, ``deleted`` is 0 or the row's own id; the side tables
(:mod:`cells.seeding.siderows`) hold the flavor, network model, metadata, tags, faults and volumes.
Everything is drawn from one ``random.Random(plan.seed)``, so a plan always yields the same
rows, whatever the chunk size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeAlias

from cells.seeding.siderows import SIDE_COLUMNS, FlavorSpec

__all__ = [
    "EPOCH",
    "FLAVORS",
    "FLAVOR_COLUMNS",
    "INSTANCE_COLUMNS",
    "MAPPING_COLUMNS",
    "SERVICE_COLUMNS",
    "SIDE_COLUMNS",
    "Flavor",
    "Row",
    "SeedPlan",
    "cell_weights",
    "flavor_rows",
    "project_weights",
    "service_rows",
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
    "deleted_at", "deleted", "memory_mb", "vcpus", "root_gb", "ephemeral_gb", "compute_id",
    "reservation_id", "launched_on", "key_data", "shutdown_terminate", "disable_terminate",
    "cleaned", "hidden", "architecture",
)  # fmt: skip
MAPPING_COLUMNS = (
    "id", "instance_uuid", "cell_id", "project_id", "user_id", "queued_for_delete",
    "created_at", "updated_at",
)  # fmt: skip
FLAVOR_COLUMNS = (
    "id", "flavorid", "name", "memory_mb", "vcpus", "root_gb", "ephemeral_gb", "swap",
    "rxtx_factor", "vcpu_weight", "disabled", "is_public", "created_at", "updated_at",
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
    cell_ratio: float = 0.5
    """Each cell's share relative to the previous one's: 0.5 halves it from cell to cell,
    1 spreads instances evenly (the benchmark's 32 cells use 0.9)."""
    deleted_fraction: float = 0.05

    def __post_init__(self) -> None:
        if self.instances < 0 or self.projects < 0 or self.empty_cells < 0:
            raise ValueError("instances, projects and empty_cells must be >= 0")
        if not 0.0 <= self.deleted_fraction <= 1.0:
            raise ValueError("deleted_fraction must be within [0, 1]")
        if not 0.0 < self.cell_ratio <= 1.0:
            raise ValueError("cell_ratio must be within (0, 1]")


Flavor = FlavorSpec
"""One entry of the flavor catalog (``flavors.id`` is its ``id``)."""


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


def cell_weights(n_cells: int, plan: SeedPlan) -> list[float]:
    """Relative instance share of each cell: ``plan.cell_ratio`` of the previous cell's (by
    default halving), the last ``empty_cells`` zero.

    Cells are only left empty when there are at least three, and at least one cell always
    gets instances.
    """
    empty = min(plan.empty_cells, n_cells - 1) if n_cells >= 3 else 0
    filled = n_cells - empty
    return [plan.cell_ratio**i for i in range(filled)] + [0.0] * empty


def project_weights(plan: SeedPlan) -> list[tuple[str, float]]:
    """``(project_id, share)``: ``demo`` ~30%, ``admin`` a few, the rest Zipf-skewed."""
    width = max(2, len(str(plan.projects)))
    zipf = [1.0 / k**1.1 for k in range(1, plan.projects + 1)]
    total = sum(zipf) or 1.0
    others = [(f"proj-{k:0{width}d}", 0.695 * w / total) for k, w in enumerate(zipf, 1)]
    return [("demo", 0.30), ("admin", 0.005), *others]


def flavor_rows() -> list[Row]:
    """The ``flavors`` rows for :data:`FLAVORS`."""
    return [
        (f.id, f.flavorid, f.name, f.memory_mb, f.vcpus, f.root_gb, f.ephemeral_gb, f.swap,
         1.0, 0, False, True, EPOCH, None)
        for f in FLAVORS
    ]  # fmt: skip


SERVICE_COLUMNS = (
    "id", "uuid", "host", "binary", "topic", "report_count", "disabled", "disabled_reason",
    "last_seen_up", "forced_down", "version", "created_at", "updated_at", "deleted_at",
    "deleted",
)  # fmt: skip

COMPUTE_HOSTS = tuple(f"compute-{n:02d}" for n in range(1, 25))
"""The hosts the seeded instances run on (``instances.host``)."""


def service_rows(now: datetime) -> list[Row]:
    """Every cell's ``services``: a ``nova-conductor`` and one ``nova-compute`` per host,
    seen up at ``now``, except: compute-01 disabled (``MAINTENANCE``), compute-02 forced
    down (``DOWN``), compute-03 last seen a day earlier (``UNKNOWN``), compute-04 with no
    row at all (``""``) and compute-05 disabled *and* forced down (``DOWN``)."""
    day = timedelta(days=1)
    rows: list[Row] = []

    def add(
        host: str, binary: str, seen: datetime, disabled: bool, forced: bool, gone: bool
    ) -> None:
        n = len(rows) + 1
        uuid = f"00000000-0000-4000-8000-{n:012d}"
        topic = binary.removeprefix("nova-")
        reason = "maintenance" if disabled else None
        deleted = n if gone else 0
        rows.append(
            (n, uuid, host, binary, topic, 10, disabled, reason, seen, forced, 66, now - day,
             seen, now - day if gone else None, deleted)
        )  # fmt: skip

    add("conductor-01", "nova-conductor", now, False, False, False)
    for host in COMPUTE_HOSTS:
        if host == "compute-04":
            continue
        add(
            host,
            "nova-compute",
            now - day if host == "compute-03" else now,
            host in ("compute-01", "compute-05"),
            host in ("compute-02", "compute-05"),
            False,
        )
    return rows
