"""Nova's ``vm_state``/``task_state`` pair and the API ``status`` it is shown as.

Nova stores two fields per instance and derives the public ``status`` from them: every
``vm_state`` has a default status, and some task states override it while they run (an
``active`` instance that is ``rebooting`` shows ``REBOOT``). The same table is read in
reverse for the ``status`` filter: a status names the vm_states that can show it, plus the
task states to require, unless it is some vm_state's default status, in which case Nova
filters on vm_state alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

__all__ = ["UNKNOWN_STATUS", "shown_statuses", "states_for_statuses", "status_from_state"]

UNKNOWN_STATUS: Final = "UNKNOWN"


@dataclass(frozen=True)
class _Statuses:
    """How one vm_state is shown: a default status and per-task-state overrides."""

    default: str
    by_task: Mapping[str, str] = field(default_factory=dict)


_REBOOT = {"rebooting": "REBOOT", "reboot_pending": "REBOOT", "reboot_started": "REBOOT"}
_HARD_REBOOT = {
    "rebooting_hard": "HARD_REBOOT",
    "reboot_pending_hard": "HARD_REBOOT",
    "reboot_started_hard": "HARD_REBOOT",
}
_REBUILD = {
    "rebuilding": "REBUILD",
    "rebuild_block_device_mapping": "REBUILD",
    "rebuild_spawning": "REBUILD",
}
_RESIZE = {
    "resize_prep": "RESIZE",
    "resize_migrating": "RESIZE",
    "resize_migrated": "RESIZE",
    "resize_finish": "RESIZE",
}

_TABLE: Final[Mapping[str, _Statuses]] = {
    "active": _Statuses(
        "ACTIVE",
        {
            **_REBOOT,
            **_HARD_REBOOT,
            "updating_password": "PASSWORD",
            **_REBUILD,
            "migrating": "MIGRATING",
            **_RESIZE,
        },
    ),
    "building": _Statuses("BUILD"),
    "stopped": _Statuses("SHUTOFF", {**_RESIZE, **_REBUILD}),
    "resized": _Statuses("VERIFY_RESIZE", {"resize_reverting": "REVERT_RESIZE"}),
    "paused": _Statuses("PAUSED", {"migrating": "MIGRATING"}),
    "suspended": _Statuses("SUSPENDED"),
    "rescued": _Statuses("RESCUE"),
    "error": _Statuses("ERROR", _REBUILD),
    "deleted": _Statuses("DELETED"),
    "soft-delete": _Statuses("SOFT_DELETED"),
    "shelved": _Statuses("SHELVED"),
    "shelved_offloaded": _Statuses("SHELVED_OFFLOADED"),
}


def status_from_state(vm_state: str | None, task_state: str | None) -> str:
    """The API ``status`` Nova shows for a ``vm_state``/``task_state`` pair.

    An unknown ``vm_state`` (or ``None``) gives ``"UNKNOWN"``; a task state with no override
    for that vm_state (or ``None``) gives the vm_state's default status.
    """
    statuses = _TABLE.get(vm_state) if vm_state is not None else None
    if statuses is None:
        return UNKNOWN_STATUS
    if task_state is None:
        return statuses.default
    return statuses.by_task.get(task_state, statuses.default)


def states_for_statuses(
    statuses: Sequence[str],
) -> tuple[frozenset[str], frozenset[str] | None]:
    """The ``vm_state`` and ``task_state`` filters equivalent to ``status=...`` values.

    Matching is case-insensitive. Returns the vm_states that can show any of ``statuses``
    and the task states to require; the task states are ``None`` when some status is a
    vm_state's default, because Nova then filters on vm_state alone (so
    ``["ACTIVE", "REBOOT"]`` means every ``active`` instance). An empty vm_state set means
    no status was valid; the caller decides between 400 and an empty list.
    """
    wanted = {status.lower() for status in statuses}
    vm_states: set[str] = set()
    task_states: set[str] = set()
    default_matched = False
    for vm_state, shown in _TABLE.items():
        if shown.default.lower() in wanted:
            vm_states.add(vm_state)
            default_matched = True
        for task_state, status in shown.by_task.items():
            if status.lower() in wanted:
                vm_states.add(vm_state)
                task_states.add(task_state)
    return frozenset(vm_states), None if default_matched else frozenset(task_states)


def shown_statuses() -> list[str]:
    """Every status a server can be shown with (sorted): what a ``status`` filter takes."""
    shown = {s.default for s in _TABLE.values()}
    shown.update(*(s.by_task.values() for s in _TABLE.values()))
    return sorted(shown)
