"""gateway.requestspecs and the spec's server group (cells.novajson): the ``group`` hint is
dropped, as Nova drops it, when the caller's group query does not find the group."""

from __future__ import annotations

import orjson
import pytest

from cells.novajson import RequestSpecInfo, decode_request_spec
from gateway.requestspecs import group_scope, with_groups_found
from tests.support.callers import ADMIN, USER, caller

GROUP = "6b7c9a3e-3a4e-4a52-9d55-0d1e7f2b8c11"
OTHER = "0f0e0d0c-0b0a-4909-8807-060504030201"


def _spec(data: dict[str, object]) -> str:
    return orjson.dumps({"nova_object.name": "RequestSpec", "nova_object.data": data}).decode()


def _group(data: dict[str, object]) -> dict[str, object]:
    return {"nova_object.name": "InstanceGroup", "nova_object.data": data}


def _decoded(data: dict[str, object]) -> RequestSpecInfo:
    spec = decode_request_spec(_spec(data))
    assert spec is not None
    return spec


def test_a_spec_without_a_group_is_not_grouped() -> None:
    for group in (None, "junk"):
        spec = _decoded({"instance_group": group, "scheduler_hints": {"group": [GROUP]}})
        assert (spec.grouped, spec.group_uuid) == (False, None)
    assert not _decoded({"scheduler_hints": {}}).grouped


def test_nova_reloads_the_group_by_its_own_uuid() -> None:
    hints = {"group": [OTHER], "same_host": ["a", "b"]}
    spec = _decoded({"instance_group": _group({"uuid": GROUP}), "scheduler_hints": hints})
    assert (spec.grouped, spec.group_uuid) == (True, GROUP)


@pytest.mark.parametrize(
    ("hints", "looked_up"),
    [
        ({"group": [GROUP]}, GROUP),
        ({"group": GROUP}, GROUP),  # a lone value is a list of one, as Nova loads it
        ({"group": [GROUP, OTHER]}, None),
        ({}, None),
        (None, None),
    ],
)
def test_a_group_without_a_uuid_is_reloaded_by_a_lone_group_hint(
    hints: object, looked_up: str | None
) -> None:
    spec = _decoded({"instance_group": _group({"name": "g"}), "scheduler_hints": hints})
    assert (spec.grouped, spec.group_uuid) == (True, looked_up)


def test_without_group_hint_keeps_the_other_hints() -> None:
    spec = _decoded(
        {
            "instance_group": _group({"uuid": GROUP}),
            "scheduler_hints": {"group": [GROUP], "same_host": ["a"]},
        }
    )
    assert spec.without_group_hint().scheduler_hints == {"same_host": ["a"]}
    grouped = _group({"uuid": GROUP})
    only = _decoded({"instance_group": grouped, "scheduler_hints": {"group": GROUP}})
    assert only.without_group_hint().scheduler_hints == {}  # Nova shows {}, not null
    none = _decoded({"instance_group": _group({"uuid": GROUP})})
    assert none.without_group_hint() is none


def test_only_groups_not_found_lose_their_hint() -> None:
    hints = {"group": [GROUP]}
    found = _decoded({"instance_group": _group({"uuid": GROUP}), "scheduler_hints": hints})
    lost = _decoded(
        {"instance_group": _group({"uuid": OTHER}), "scheduler_hints": {"group": [OTHER]}}
    )
    nameless = _decoded({"instance_group": _group({}), "scheduler_hints": {"group": [1, 2]}})
    # A group hint without an instance_group is not reloaded: Nova leaves it.
    loose = _decoded({"instance_group": None, "scheduler_hints": {"group": [OTHER]}})
    specs = {"a": found, "b": lost, "c": nameless, "d": loose}
    shown = with_groups_found(specs, frozenset({GROUP}))
    assert shown["a"].scheduler_hints == hints
    assert shown["b"].scheduler_hints == {}
    assert shown["c"].scheduler_hints == {}
    assert shown["d"].scheduler_hints == {"group": [OTHER]}
    assert with_groups_found(specs, frozenset({GROUP, OTHER}))["b"] == lost


def test_an_admin_finds_any_group_others_their_projects() -> None:
    assert group_scope(ADMIN) is None
    assert group_scope(USER) == "demo"
    auditor = caller("audit", "proj-01", frozenset({"auditor", "reader"}))
    assert group_scope(auditor) == "proj-01"  # listing every project is not admin
