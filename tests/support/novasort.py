"""What Nova's cross-cell merge compares, written out from ``nova/compute/instance_list.py``
and ``multi_cell_list.py`` (Nova 34) to explain its answers, never to produce cellgate's.

Nova appends ``uuid``/``asc`` to the requested keys and directions; the cells pad the
remaining directions with the first one (their ORDER BY is complete), but the merge of the
cells' streams compares ``zip(keys, dirs)``: only as many keys as there are directions.
With fewer ``sort_dir`` than ``sort_key`` the merge therefore ignores the last keys
(``uuid`` among them), and servers tied on the compared prefix come out of the merge in
whatever order the cells' streams offer them; after a marker Nova also drops some of
them (the marker's cell skips the tie, the others' ``>`` predicate does too).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["merge_compares_every_key", "nullable_sort_keys"]

# The instances columns Nova's sort keys name that may hold NULL (instances model).
_NULLABLE = frozenset(
    {
        "access_ip_v4", "access_ip_v6", "auto_disk_config", "availability_zone",
        "config_drive", "display_description", "display_name", "host", "hostname",
        "image_ref", "instance_type_id", "kernel_id", "key_name", "launch_index",
        "launched_at", "locked_by", "node", "power_state", "progress", "project_id",
        "ramdisk_id", "root_device_name", "task_state", "terminated_at", "updated_at",
        "user_id", "vm_state",
    }
)  # fmt: skip


def _keys_and_dirs(params: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
    keys = [v.strip() for k, v in params if k == "sort_key"] or ["created_at"]
    dirs = [v.strip() for k, v in params if k == "sort_dir"] or ["desc"]
    return keys, dirs


def merge_compares_every_key(params: Sequence[tuple[str, str]]) -> bool:
    """Whether Nova's merge compares every key of the order (else ties go astray)."""
    keys, dirs = _keys_and_dirs(params)
    if "uuid" not in keys:
        keys, dirs = [*keys, "uuid"], [*dirs, "asc"]
    return len(dirs) >= len(keys)


def nullable_sort_keys(params: Sequence[tuple[str, str]]) -> set[str]:
    """The requested sort keys whose column may hold NULL (a 500 in Nova's merge when a
    NULL meets a value: ``None < datetime`` raises ``TypeError``)."""
    keys, _ = _keys_and_dirs(params)
    return {key for key in keys if key in _NULLABLE}
