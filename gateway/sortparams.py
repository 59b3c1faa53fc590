"""Nova's rule for turning ``sort_key``/``sort_dir`` into a full order, kept exactly.

Nova (``common.get_sort_params``, ``remove_invalid_sort_keys``, ``InstanceSortContext``,
``db.process_sort_params``) defaults the keys to ``created_at`` and the directions to
``desc``, drops an ignored key with the direction at its index (when there is one),
appends ``uuid asc`` *before* padding, then pads the missing directions with the first
one. So ``sort_key=a&sort_key=b&sort_dir=desc`` orders by ``a desc, b asc, uuid desc``:
the second key takes the ``asc`` meant for ``uuid``. When every key was dropped the order
is ``created_at desc, id desc`` (then ``uuid asc``). cellgate's cells then follow the same
order Nova's cells do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cells.order import Direction

__all__ = ["nova_order"]


def nova_order(
    keys: Sequence[str], dirs: Sequence[str], ignored: Callable[[str], bool]
) -> tuple[tuple[str, Direction], ...]:
    """The full order for the requested ``keys`` and ``dirs`` (validated, non-empty or
    empty lists as given by the client); ``ignored`` says which keys Nova drops.

    Raises ``ValueError`` when there are more directions than keys (Nova's 400).
    """
    keys = list(keys) or ["created_at"]
    dirs = list(dirs) or ["desc"]
    for key in [k for k in keys if ignored(k)]:
        index = keys.index(key)
        if len(dirs) > index:
            dirs.pop(index)
        keys.pop(index)
    if not keys:
        keys, dirs = ["created_at", "id"], ["desc", "desc"]
    if "uuid" not in keys:
        keys, dirs = [*keys, "uuid"], [*dirs, "asc"]
    if len(dirs) > len(keys):
        raise ValueError("Sort direction size exceeds sort key size")
    dirs += [dirs[0]] * (len(keys) - len(dirs))
    return tuple((key, Direction(d)) for key, d in zip(keys, dirs, strict=False))
