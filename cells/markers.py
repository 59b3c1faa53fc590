"""The statement that reads a marker's row from its cell (the resolution itself, Nova's rule,
is :func:`cells.walk.resolve_marker`)."""

from __future__ import annotations

from sqlalchemy import Select, bindparam, select

from cells.schema import instances

__all__ = ["marker_select"]


def marker_select(names: tuple[str, ...]) -> Select[tuple[object, ...]]:
    """The marker's row (bound as ``marker``): its project and sort keys, soft-deleted or
    not (Nova's rule)."""
    c = instances.c
    columns = (c.project_id, *(c[name] for name in names))
    return select(*columns).where(c.uuid == bindparam("marker")).limit(1)
