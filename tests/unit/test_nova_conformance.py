"""scripts/nova_conformance's comparison (pure): every kind of difference is reported."""

from __future__ import annotations

import copy

import nova_conformance
from nova_dump import describe

from cells.schema import cell_metadata

OURS = describe(cell_metadata)


def test_identical_shapes_conform() -> None:
    assert nova_conformance.compare(copy.deepcopy(OURS), OURS) == []


def test_every_difference_is_reported() -> None:
    nova = copy.deepcopy(OURS)
    instances = nova["instances"]
    del instances["columns"]["compute_id"]
    instances["columns"]["display_name"]["length"] = 100
    instances["columns"]["uuid"]["nullable"] = True
    instances["columns"]["shadow"] = dict(instances["columns"]["host"])
    instances["indexes"]["instances_project_id_idx"]["columns"] = ["project_id", "deleted"]
    del instances["indexes"]["instances_uuid_deleted_idx"]
    nova["tags"]["indexes"]["tags_tag_idx"]["unique"] = True
    del nova["instance_faults"]
    problems = nova_conformance.compare(nova, OURS)
    assert len(problems) == 8, problems
    joined = "\n".join(problems)
    for fragment in (
        "instances.compute_id: not in Nova's models",
        "instances.display_name: Nova string(100) NULL, cellgate string(255) NULL",
        "instances.uuid: Nova string(36) NULL, cellgate string(36) NOT NULL",
        "instances.shadow: missing",
        "index instances_project_id_idx",
        "index instances_uuid_deleted_idx: Nova none",
        "tags index tags_tag_idx: Nova UNIQUE (tag), cellgate (tag)",
        "instance_faults: not a Nova table",
    ):
        assert fragment in joined


def test_types_are_described_by_generic_kind() -> None:
    columns = OURS["instances"]["columns"]
    assert columns["access_ip_v4"] == {
        "kind": "string",
        "length": None,
        "nullable": True,
        "primary_key": False,
    }
    assert columns["locked_by"]["kind"] == "enum"
    assert columns["compute_id"]["kind"] == "biginteger"
    assert columns["key_data"]["kind"] == "text"
    assert OURS["instances"]["indexes"]["uniq_instances0uuid"] == {
        "columns": ["uuid"],
        "unique": True,
    }
