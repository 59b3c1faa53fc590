"""The seed data generator (pure) and the URL mapping; no database is touched."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import orjson
import pytest

from cells.schema import flavors, instance_mappings, instances
from cells.seed import SeedCell, seed
from cells.seeddata import (
    FLAVOR_COLUMNS,
    INSTANCE_COLUMNS,
    MAPPING_COLUMNS,
    Chunk,
    Row,
    SeedPlan,
    cell_weights,
    flavor_rows,
    generate,
    iter_chunks,
)

PLAN = SeedPlan(instances=5_000, seed=7)
COL = {name: i for i, name in enumerate(INSTANCE_COLUMNS)}


@pytest.fixture(scope="module")
def data() -> Chunk:
    return generate(4, PLAN)


def all_rows(chunk: Chunk) -> list[Row]:
    return [row for rows in chunk.instances for row in rows]


def column(chunk: Chunk, name: str) -> list[object]:
    return [row[COL[name]] for row in all_rows(chunk)]


def test_columns_match_schema() -> None:
    assert set(INSTANCE_COLUMNS) == set(instances.c.keys())
    assert set(MAPPING_COLUMNS) == set(instance_mappings.c.keys())
    assert set(FLAVOR_COLUMNS) == set(flavors.c.keys())


def test_deterministic_for_a_seed(data: Chunk) -> None:
    assert generate(4, PLAN) == data
    assert generate(4, SeedPlan(instances=5_000, seed=8)) != data


def test_chunk_size_does_not_change_the_data(data: Chunk) -> None:
    chunks = list(iter_chunks(4, PLAN, chunk_size=777))
    assert [len(c) for c in chunks[:-1]] == [777] * (len(chunks) - 1)
    assert [m for c in chunks for m in c.mappings] == data.mappings
    for cell in range(4):
        assert [r for c in chunks for r in c.instances[cell]] == data.instances[cell]


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
    ["task_state", "launched_at", "host", "node", "key_name", "availability_zone", "hostname"],
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
            assert row[COL["network_info"]] == "{}"
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


def test_json_columns(data: Chunk) -> None:
    flavor_ids = {row[0] for row in flavor_rows()}
    for row in all_rows(data)[:500]:
        flavor = orjson.loads(str(row[COL["flavor"]]))
        assert flavor["id"] == row[COL["instance_type_id"]] in flavor_ids
        assert isinstance(orjson.loads(str(row[COL["metadata"]])), dict)
        assert isinstance(orjson.loads(str(row[COL["tags"]])), list)
        addresses = orjson.loads(str(row[COL["network_info"]]))
        for entry in addresses.get("private", []):
            assert entry["OS-EXT-IPS:type"] in ("fixed", "floating")
            assert entry["OS-EXT-IPS-MAC:mac_addr"].startswith("fa:16:3e:")


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
        [SeedCell("cell1", "mysql://x/c1")],
    ],
)
async def test_seed_rejects_bad_targets_before_any_io(cells: list[SeedCell]) -> None:
    with pytest.raises(ValueError, match=r"cell|URL"):
        await seed("sqlite:////x/api.db", cells, SeedPlan(instances=1), progress=False)
