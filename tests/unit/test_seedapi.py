"""cells.seeding.apirows: request specs and server groups derived from the seeded instances, and
their decoding (cells.novajson.decode_request_spec) back to what the instance says."""

from __future__ import annotations

from collections import Counter

import pytest

from cells.novajson import decode_request_spec
from cells.schema import api_metadata
from cells.seeding.apirows import API_COLUMNS
from cells.seeding.dataset import FLAVORS, INSTANCE_COLUMNS, Row, SeedPlan
from cells.seeding.generator import Chunk, generate, iter_chunks

PLAN = SeedPlan(instances=3_000, seed=3)
COL = {name: i for i, name in enumerate(INSTANCE_COLUMNS)}


@pytest.fixture(scope="module")
def data() -> Chunk:
    return generate(3, PLAN)


def _instances(chunk: Chunk) -> dict[str, Row]:
    return {str(row[COL["uuid"]]): row for rows in chunk.instances for row in rows}


def test_columns_match_schema() -> None:
    for name, columns in API_COLUMNS.items():
        table = api_metadata.tables[name]
        assert set(columns) <= set(table.c.keys()), name
        required = {c.name for c in table.c if not c.nullable and c.autoincrement is not True}
        assert required - {"id"} <= set(columns), name


def test_one_request_spec_per_instance_saying_what_the_instance_says(data: Chunk) -> None:
    instances = _instances(data)
    specs = data.api["request_specs"]
    assert sorted(str(s[1]) for s in specs) == sorted(instances)
    assert [s[0] for s in specs] == list(range(1, len(specs) + 1))
    flavors = {f.id: f for f in FLAVORS}
    for _, uuid, spec, created, _ in specs:
        row = instances[str(uuid)]
        info = decode_request_spec(spec)
        assert info is not None
        assert created == row[COL["created_at"]]
        assert info.user_id == row[COL["user_id"]]
        assert info.image_id == (row[COL["image_ref"]] or None)
        zone = row[COL["availability_zone"]]
        assert info.availability_zone == (zone if zone == "az2" else None)
        flavor = flavors[int(str(row[COL["instance_type_id"]]))]
        assert info.flavor is not None
        assert (info.flavor.flavorid, info.flavor.memory_mb) == (flavor.flavorid, flavor.memory_mb)
        assert dict(info.flavor.extra_specs) == dict(flavor.extra_specs)


def test_groups_hold_whole_bursts_of_one_project(data: Chunk) -> None:
    instances = _instances(data)
    groups = {g[0]: g for g in data.api["instance_groups"]}
    members = data.api["instance_group_member"]
    assert groups
    assert len({g[3] for g in groups.values()}) == len(groups)  # uuids are unique
    assert len({m[1] for m in members}) == len(members)  # one group per instance at most
    burst_of = {m[1]: instances[str(m[1])][COL["reservation_id"]] for m in members}
    for _, uuid, group_id, _, _ in members:
        group = groups[group_id]
        assert group[2] == instances[str(uuid)][COL["project_id"]]
    # A burst is entirely in its group or not at all.
    grouped = Counter(burst_of.values())
    sizes = Counter(str(row[COL["reservation_id"]]) for row in instances.values())
    assert all(grouped[r] == sizes[r] for r in grouped)
    assert 0.1 < len(members) / len(instances) < 0.5


def test_chunking_does_not_change_the_api_rows(data: Chunk) -> None:
    chunks = list(iter_chunks(3, PLAN, chunk_size=311))
    for name in API_COLUMNS:
        assert [r for c in chunks for r in c.api[name]] == data.api[name], name


@pytest.mark.parametrize("garbage", [None, "", "{", "[]", '{"nova_object.data": 3}'])
def test_unreadable_spec(garbage: object) -> None:
    assert decode_request_spec(garbage) is None
