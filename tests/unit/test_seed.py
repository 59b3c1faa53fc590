"""The seed data generator (pure) and the URL mapping; no database is touched."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest

from cells.novajson import decode_flavor, decode_network_info
from cells.schema import cell_metadata, flavors, instance_mappings, instances
from cells.seeding import SeedCell, seed
from cells.seeding.dataset import (
    FLAVOR_COLUMNS,
    INSTANCE_COLUMNS,
    MAPPING_COLUMNS,
    SIDE_COLUMNS,
    Row,
    SeedPlan,
    cell_weights,
    flavor_rows,
)
from cells.seeding.generator import Chunk, generate, iter_chunks

PLAN = SeedPlan(instances=5_000, seed=7)
COL = {name: i for i, name in enumerate(INSTANCE_COLUMNS)}


@pytest.fixture(scope="module")
def data() -> Chunk:
    return generate(4, PLAN)


def all_rows(chunk: Chunk) -> list[Row]:
    return [row for rows in chunk.instances for row in rows]


def column(chunk: Chunk, name: str) -> list[object]:
    return [row[COL[name]] for row in all_rows(chunk)]


def _required(table_columns: object) -> set[str]:
    """Columns Nova always writes: NOT NULL ones, and those with a default."""
    return {
        c.name
        for c in table_columns  # type: ignore[attr-defined]  # the parameter is typed object: any table's columns
        if (not c.nullable or c.default is not None) and c.autoincrement is not True
    }


def test_columns_match_schema() -> None:
    assert set(INSTANCE_COLUMNS) <= set(instances.c.keys())
    assert set(MAPPING_COLUMNS) == set(instance_mappings.c.keys())
    assert set(FLAVOR_COLUMNS) <= set(flavors.c.keys())
    for table, columns in [(instances, INSTANCE_COLUMNS), (flavors, FLAVOR_COLUMNS)]:
        assert _required(table.c) <= set(columns), table.name
    for name, columns in SIDE_COLUMNS.items():
        table = cell_metadata.tables[name]
        assert set(columns) <= set(table.c.keys()), name
        assert _required(table.c) <= set(columns), name


def test_deterministic_for_a_seed(data: Chunk) -> None:
    assert generate(4, PLAN) == data
    assert generate(4, SeedPlan(instances=5_000, seed=8)) != data


def test_cell_count_does_not_change_the_instances() -> None:
    # The benchmark compares one data set over 8 cells with the same one in 1 database: the
    # instances (all but their per-cell ids) and mappings must not depend on the layout.
    plan = SeedPlan(instances=3_000, seed=5)
    per_cell = {"id", "deleted", "cell_id"}  # deleted = the row's own id once soft-deleted

    def instances_by_uuid(chunk: Chunk) -> dict[object, dict[str, object]]:
        rows = [
            dict(zip(INSTANCE_COLUMNS, r, strict=True)) for cell in chunk.instances for r in cell
        ]
        return {r["uuid"]: {k: v for k, v in r.items() if k not in per_cell} for r in rows}

    def mappings(chunk: Chunk) -> list[dict[str, object]]:
        rows = [dict(zip(MAPPING_COLUMNS, m, strict=True)) for m in chunk.mappings]
        return [{k: v for k, v in r.items() if k not in per_cell} for r in rows]

    one, eight = generate(1, plan), generate(8, plan)
    assert instances_by_uuid(one) == instances_by_uuid(eight)
    assert mappings(one) == mappings(eight)
    assert one.api == eight.api


def test_chunk_size_does_not_change_the_data(data: Chunk) -> None:
    chunks = list(iter_chunks(4, PLAN, chunk_size=777))
    assert [len(c) for c in chunks[:-1]] == [777] * (len(chunks) - 1)
    assert [m for c in chunks for m in c.mappings] == data.mappings
    for cell in range(4):
        assert [r for c in chunks for r in c.instances[cell]] == data.instances[cell]
        for name in SIDE_COLUMNS:
            assert [r for c in chunks for r in c.side[cell][name]] == data.side[cell][name]


def test_every_instance_has_one_mapping_in_its_cell(data: Chunk) -> None:
    assert len(data.mappings) == PLAN.instances == len(all_rows(data))
    cell_of = {m[1]: m[2] for m in data.mappings}
    for position, rows in enumerate(data.instances):
        assert all(cell_of[row[COL["uuid"]]] == position + 1 for row in rows)


def test_uuids_unique(data: Chunk) -> None:
    uuids = column(data, "uuid")
    assert len(set(uuids)) == len(uuids)


def test_last_cell_empty_and_sizes_skewed(data: Chunk) -> None:
    sizes = [len(rows) for rows in data.instances]
    assert sizes[-1] == 0
    assert sizes[0] > sizes[1] > sizes[2] > 0


def test_cell_ratio_spreads_instances() -> None:
    even = generate(5, SeedPlan(instances=4_000, seed=3, cell_ratio=1.0))
    sizes = [len(rows) for rows in even.instances]
    assert sizes[-1] == 0
    assert all(800 <= n <= 1_200 for n in sizes[:-1]), sizes
    with pytest.raises(ValueError, match="cell_ratio"):
        SeedPlan(cell_ratio=0.0)


@pytest.mark.parametrize(
    ("n_cells", "empty_cells", "expected_empty"),
    [(1, 1, 0), (2, 1, 0), (3, 1, 1), (8, 1, 1), (8, 3, 3), (3, 5, 2), (4, 0, 0)],
)
def test_cell_weights(n_cells: int, empty_cells: int, expected_empty: int) -> None:
    weights = cell_weights(n_cells, SeedPlan(empty_cells=empty_cells))
    assert len(weights) == n_cells
    assert weights.count(0) == expected_empty
    assert weights[n_cells - expected_empty :] == [0] * expected_empty


def test_created_at_has_ties_within_and_across_cells(data: Chunk) -> None:
    created = Counter(column(data, "created_at"))
    assert max(created.values()) >= 5
    per_cell = [{row[COL["created_at"]] for row in rows} for rows in data.instances]
    assert per_cell[0] & per_cell[1]


def test_datetimes_are_naive_and_ordered(data: Chunk) -> None:
    rows = all_rows(data)
    created = [row[COL["created_at"]] for row in rows]
    assert all(isinstance(c, datetime) and c.tzinfo is None for c in created)
    assert any(c.microsecond for c in created if isinstance(c, datetime))
    assert any(c.microsecond == 0 for c in created if isinstance(c, datetime))
    for row in rows:
        updated, created_at = row[COL["updated_at"]], row[COL["created_at"]]
        assert isinstance(updated, datetime)
        assert isinstance(created_at, datetime)
        assert updated >= created_at


@pytest.mark.parametrize(
    "name",
    ["task_state", "launched_at", "host", "node", "key_name", "availability_zone"],
)
def test_nullable_sort_keys_hold_nulls_and_values(data: Chunk, name: str) -> None:
    values = column(data, name)
    assert None in values
    assert any(v is not None for v in values)


def test_states_are_consistent(data: Chunk) -> None:
    for row in all_rows(data):
        vm_state = row[COL["vm_state"]]
        if vm_state in ("building", "error", "shelved_offloaded"):
            assert row[COL["host"]] is None
            assert row[COL["node"]] is None
        if vm_state in ("building", "error"):
            assert row[COL["launched_at"]] is None
        if vm_state == "building":
            assert row[COL["task_state"]] in ("spawning", "scheduling")
        if row[COL["locked"]]:
            assert row[COL["locked_by"]] in ("owner", "admin")
        else:
            assert row[COL["locked_by"]] is None
    vm_states = set(column(data, "vm_state"))
    assert {"active", "stopped", "building", "error", "deleted", "soft-delete"} <= vm_states


def test_deleted_rows_use_their_own_id(data: Chunk) -> None:
    queued = {m[1]: m[5] for m in data.mappings}
    deleted_rows = 0
    for rows in data.instances:
        assert [row[COL["id"]] for row in rows] == list(range(1, len(rows) + 1))
        for row in rows:
            is_deleted = row[COL["vm_state"]] == "deleted"
            assert row[COL["deleted"]] == (row[COL["id"]] if is_deleted else 0)
            assert (row[COL["deleted_at"]] is not None) is is_deleted
            assert (row[COL["terminated_at"]] is not None) is is_deleted
            assert queued[row[COL["uuid"]]] is is_deleted
            deleted_rows += is_deleted
    assert 0.02 < deleted_rows / PLAN.instances < 0.08


def test_projects_and_users(data: Chunk) -> None:
    projects = Counter(column(data, "project_id"))
    assert 0.2 < projects["demo"] / PLAN.instances < 0.4
    assert 0 < projects["admin"] < projects["demo"] / 20
    assert len(projects) == PLAN.projects + 2
    demo_users = {row[COL["user_id"]] for row in all_rows(data) if row[COL["project_id"]] == "demo"}
    assert "demo" in demo_users
    assert len(demo_users) > 1


def test_names_mix_case_unicode_and_duplicates(data: Chunk) -> None:
    names = Counter(column(data, "display_name"))
    assert max(names.values()) > 1
    assert any(isinstance(n, str) and not n.isascii() for n in names)
    lowered = Counter(n.lower() for n in names if isinstance(n, str))
    assert max(lowered.values()) > 1  # "Web-1" and "web-1"


def test_only_values_nova_writes(data: Chunk) -> None:
    for row in all_rows(data):
        assert isinstance(row[COL["hostname"]], str)
        assert row[COL["hostname"]]
        assert isinstance(row[COL["created_at"]], datetime)
        assert row[COL["deleted"]] in (0, row[COL["id"]])


def side(chunk: Chunk, name: str) -> list[Row]:
    return [row for cell in chunk.side for row in cell[name]]


def by_instance(chunk: Chunk, name: str, key: int = 1) -> dict[object, list[Row]]:
    out: dict[object, list[Row]] = {}
    for row in side(chunk, name):
        out.setdefault(row[key], []).append(row)
    return out


def test_flavor_in_instance_extra(data: Chunk) -> None:
    catalog = {row[0]: row[1] for row in flavor_rows()}
    extra = {row[1]: row for row in side(data, "instance_extra")}
    assert len(extra) == PLAN.instances
    for row in all_rows(data):
        flavor = decode_flavor(extra[row[COL["uuid"]]][2])
        assert flavor is not None
        assert flavor.flavorid == catalog[row[COL["instance_type_id"]]]
        assert flavor.memory_mb == row[COL["memory_mb"]]


def test_network_model(data: Chunk) -> None:
    caches = {row[1]: row[2] for row in side(data, "instance_info_caches")}
    kinds: Counter[tuple[str, int]] = Counter()
    vifs = Counter()
    for row in all_rows(data):
        networks = decode_network_info(caches[row[COL["uuid"]]])
        if row[COL["launched_at"]] is None or row[COL["deleted"]]:
            assert networks == ()
            continue
        assert networks
        macs = {a.mac for _, addresses in networks for a in addresses}
        vifs[len(macs)] += 1
        for _, addresses in networks:
            kinds.update((a.type, a.version) for a in addresses)
            types = [a.type for a in addresses]
            assert types == sorted(types)  # fixed before floating
    assert set(vifs) == {1, 2}
    assert {("fixed", 4), ("fixed", 6), ("floating", 4)} <= set(kinds)


def test_metadata_and_tags(data: Chunk) -> None:
    metadata = by_instance(data, "instance_metadata")
    tags = by_instance(data, "tags", key=0)
    live_keys = Counter(
        len([m for m in metadata.get(row[COL["uuid"]], []) if m[-1] == 0])
        for row in all_rows(data)
        if not row[COL["deleted"]]
    )
    assert set(live_keys) == {0, 1, 2, 3}
    assert any(m[-1] == m[0] for rows in metadata.values() for m in rows)  # soft-deleted keys
    assert {len(v) for v in tags.values()} == {1, 2, 3}
    deleted = {row[COL["uuid"]] for row in all_rows(data) if row[COL["deleted"]]}
    assert not deleted & set(tags)  # Nova drops a deleted instance's tags


def test_faults_on_error_instances(data: Chunk) -> None:
    faults = by_instance(data, "instance_faults")
    errors = [row[COL["uuid"]] for row in all_rows(data) if row[COL["vm_state"]] == "error"]
    assert errors
    assert all(uuid in faults for uuid in errors)
    assert max(len(faults[uuid]) for uuid in errors) >= 2
    for rows in faults.values():
        assert [r[6] for r in rows] == sorted(r[6] for r in rows)  # the highest id is latest


def test_volumes_and_boot_from_volume(data: Chunk) -> None:
    bdms = by_instance(data, "block_device_mapping")
    col = {name: i for i, name in enumerate(SIDE_COLUMNS["block_device_mapping"])}
    from_volume = [row for row in all_rows(data) if row[COL["image_ref"]] == ""]
    assert from_volume
    for row in from_volume:
        roots = [b for b in bdms[row[COL["uuid"]]] if b[col["boot_index"]] == 0]
        assert roots
        assert roots[0][col["destination_type"]] == "volume"
    counts = Counter(len(v) for v in bdms.values())
    assert {1, 2} <= set(counts)
    assert any(b[col["deleted"]] for rows in bdms.values() for b in rows)  # detached


def test_deleted_instances_side_rows_are_soft_deleted(data: Chunk) -> None:
    deleted = {row[COL["uuid"]] for row in all_rows(data) if row[COL["deleted"]]}
    assert deleted
    for name in ("instance_extra", "instance_info_caches", "instance_faults"):
        columns = SIDE_COLUMNS[name]
        d, i = columns.index("deleted"), columns.index("id")
        for row in side(data, name):
            if row[1] in deleted:
                assert row[d] == row[i]


def test_flavor_catalog() -> None:
    rows = flavor_rows()
    flavorids = [row[1] for row in rows]
    assert {"1", "2", "3", "4", "5", "6"} <= set(flavorids)
    assert any(isinstance(f, str) and len(f) == 36 for f in flavorids)
    assert [row[0] for row in rows] == list(range(1, len(rows) + 1))


def test_zero_instances() -> None:
    empty = generate(3, SeedPlan(instances=0))
    assert len(empty) == 0
    assert empty.instances == ([], [], [])
    assert all(not rows for cell in empty.side for rows in cell.values())


def test_invalid_plan() -> None:
    with pytest.raises(ValueError, match="deleted_fraction"):
        SeedPlan(deleted_fraction=1.5)
    with pytest.raises(ValueError, match=">= 0"):
        SeedPlan(instances=-1)


@pytest.mark.parametrize(
    "cells",
    [
        [],
        [SeedCell("cell1", "sqlite:////x/c1.db"), SeedCell("cell1", "sqlite:////x/c2.db")],
        [SeedCell("cell1", "sqlite:////x/c1.db"), SeedCell("cell2", "sqlite:////x/c1.db")],
        [SeedCell("cell1", "sqlite:////x/api.db")],
        [SeedCell("cell1", "oracle://x/c1")],
    ],
)
async def test_seed_rejects_bad_targets_before_any_io(cells: list[SeedCell]) -> None:
    with pytest.raises(ValueError, match=r"cell|URL"):
        await seed("sqlite:////x/api.db", cells, SeedPlan(instances=1), progress=False)
