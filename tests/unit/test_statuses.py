"""Tests for gateway.statuses: Nova's state table, forwards and backwards."""

from __future__ import annotations

import pytest

from gateway.statuses import states_for_statuses, status_from_state

# (vm_state, task_state, status): the whole table, one row per entry.
TABLE = [
    ("active", None, "ACTIVE"),
    ("active", "rebooting", "REBOOT"),
    ("active", "reboot_pending", "REBOOT"),
    ("active", "reboot_started", "REBOOT"),
    ("active", "rebooting_hard", "HARD_REBOOT"),
    ("active", "reboot_pending_hard", "HARD_REBOOT"),
    ("active", "reboot_started_hard", "HARD_REBOOT"),
    ("active", "updating_password", "PASSWORD"),
    ("active", "rebuilding", "REBUILD"),
    ("active", "rebuild_block_device_mapping", "REBUILD"),
    ("active", "rebuild_spawning", "REBUILD"),
    ("active", "migrating", "MIGRATING"),
    ("active", "resize_prep", "RESIZE"),
    ("active", "resize_migrating", "RESIZE"),
    ("active", "resize_migrated", "RESIZE"),
    ("active", "resize_finish", "RESIZE"),
    ("building", None, "BUILD"),
    ("stopped", None, "SHUTOFF"),
    ("stopped", "resize_prep", "RESIZE"),
    ("stopped", "resize_migrating", "RESIZE"),
    ("stopped", "resize_migrated", "RESIZE"),
    ("stopped", "resize_finish", "RESIZE"),
    ("stopped", "rebuilding", "REBUILD"),
    ("stopped", "rebuild_block_device_mapping", "REBUILD"),
    ("stopped", "rebuild_spawning", "REBUILD"),
    ("resized", None, "VERIFY_RESIZE"),
    ("resized", "resize_reverting", "REVERT_RESIZE"),
    ("paused", None, "PAUSED"),
    ("paused", "migrating", "MIGRATING"),
    ("suspended", None, "SUSPENDED"),
    ("rescued", None, "RESCUE"),
    ("error", None, "ERROR"),
    ("error", "rebuilding", "REBUILD"),
    ("error", "rebuild_block_device_mapping", "REBUILD"),
    ("error", "rebuild_spawning", "REBUILD"),
    ("deleted", None, "DELETED"),
    ("soft-delete", None, "SOFT_DELETED"),
    ("shelved", None, "SHELVED"),
    ("shelved_offloaded", None, "SHELVED_OFFLOADED"),
]


@pytest.mark.parametrize(("vm_state", "task_state", "status"), TABLE)
def test_status_from_state(vm_state: str, task_state: str | None, status: str) -> None:
    assert status_from_state(vm_state, task_state) == status


@pytest.mark.parametrize(
    ("vm_state", "task_state", "status"),
    [
        ("active", "spawning", "ACTIVE"),  # a task state without an override
        ("building", "rebooting", "BUILD"),
        ("suspended", "migrating", "SUSPENDED"),
        ("resized", "resize_prep", "VERIFY_RESIZE"),
    ],
)
def test_unlisted_task_state_shows_the_default(vm_state: str, task_state: str, status: str) -> None:
    assert status_from_state(vm_state, task_state) == status


@pytest.mark.parametrize("vm_state", [None, "", "bogus", "ACTIVE", "soft_deleted"])
def test_unknown_vm_state(vm_state: str | None) -> None:
    assert status_from_state(vm_state, None) == "UNKNOWN"
    assert status_from_state(vm_state, "rebooting") == "UNKNOWN"


def test_active_is_a_default_so_no_task_filter() -> None:
    assert states_for_statuses(["ACTIVE"]) == (frozenset({"active"}), None)


def test_reboot_requires_its_task_states() -> None:
    assert states_for_statuses(["REBOOT"]) == (
        frozenset({"active"}),
        frozenset({"rebooting", "reboot_pending", "reboot_started"}),
    )


@pytest.mark.parametrize("statuses", [["bogus"], [], ["UNKNOWN"], [""]])
def test_no_valid_status(statuses: list[str]) -> None:
    vm_states, task_states = states_for_statuses(statuses)
    assert vm_states == frozenset()
    assert not task_states


def test_case_insensitive() -> None:
    assert states_for_statuses(["active"]) == states_for_statuses(["AcTiVe"])
    assert states_for_statuses(["hard_reboot"]) == (
        frozenset({"active"}),
        frozenset({"rebooting_hard", "reboot_pending_hard", "reboot_started_hard"}),
    )


def test_status_shown_by_several_vm_states() -> None:
    assert states_for_statuses(["REBUILD"]) == (
        frozenset({"active", "stopped", "error"}),
        frozenset({"rebuilding", "rebuild_block_device_mapping", "rebuild_spawning"}),
    )
    assert states_for_statuses(["MIGRATING"]) == (
        frozenset({"active", "paused"}),
        frozenset({"migrating"}),
    )


def test_a_default_anywhere_drops_the_task_filter() -> None:
    # As in Nova: SHUTOFF is a default, so RESIZE's task states are not required and every
    # active and stopped instance matches.
    assert states_for_statuses(["SHUTOFF", "RESIZE"]) == (
        frozenset({"active", "stopped"}),
        None,
    )


def test_unknown_statuses_are_ignored_next_to_valid_ones() -> None:
    assert states_for_statuses(["bogus", "PAUSED"]) == (frozenset({"paused"}), None)


def test_soft_deleted_uses_novas_vm_state_spelling() -> None:
    assert states_for_statuses(["SOFT_DELETED"]) == (frozenset({"soft-delete"}), None)


STATUSES = sorted({status for _, _, status in TABLE})


@pytest.mark.parametrize("status", STATUSES)
def test_round_trip(status: str) -> None:
    """The filter for a status matches every table entry shown as that status, and a task
    filter admits only pairs shown as that status."""
    vm_states, task_states = states_for_statuses([status])
    for vm_state, task_state, shown in TABLE:
        if shown == status:
            assert vm_state in vm_states
            assert task_states is None or task_state in task_states
    if task_states is not None:
        for vm_state in vm_states:
            for task_state in task_states:
                assert status_from_state(vm_state, task_state) == status
