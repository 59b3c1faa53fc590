"""The detail view's side-data query: every side table of a cell for a page's uuids, as one
``UNION ALL`` (one round trip per cell); :mod:`cells.details` folds its rows.

Each branch has the same shape, ``(kind, uuid, id, a, b, number, when)``, NULL where a
table has no such column.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    DateTime,
    Integer,
    Select,
    String,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement

from cells.schema import (
    block_device_mapping,
    instance_extra,
    instance_faults,
    instance_info_caches,
    instance_metadata,
    instance_system_metadata,
    instances,
    services,
    tags,
)

__all__ = ["side_union"]


def _side(
    kind: str,
    uuid: ColumnElement[Any],
    *,
    id_: ColumnElement[Any] | None = None,
    a: ColumnElement[Any] | None = None,
    b: ColumnElement[Any] | None = None,
    number: ColumnElement[Any] | None = None,
    when: ColumnElement[Any] | None = None,
) -> Select[tuple[object, ...]]:
    """One side table's rows in the shape every branch of the union shares:
    ``(kind, uuid, id, a, b, number, when)``, NULL where a table has no such column."""
    return select(
        literal(kind, String).label("kind"),
        uuid.label("uuid"),
        (id_ if id_ is not None else cast(null(), Integer)).label("id"),
        (cast(a, Text) if a is not None else cast(null(), Text)).label("a"),
        (cast(b, Text) if b is not None else cast(null(), Text)).label("b"),
        (cast(number, Integer) if number is not None else cast(null(), Integer)).label("number"),
        (when if when is not None else cast(null(), DateTime)).label("when"),
    )


def _member(array: bool) -> Callable[[ColumnElement[Any]], ColumnElement[bool]]:
    """``column IN :uuids``: with arrays ``column = ANY($1)``, one array parameter shared by
    every branch (an IN list binds each uuid once per branch: 6 × 500 parameters)."""
    if not array:
        expanding = bindparam("uuids", expanding=True, type_=String)
        return lambda column: column.in_(expanding)
    uuids = bindparam("uuids", type_=ARRAY(String))
    return lambda column: column == any_(uuids)


def side_union(
    with_tags: bool, array: bool, with_system_metadata: bool = False, with_service: bool = False
) -> CompoundSelect[tuple[object, ...]]:
    """Every side table's rows for the uuids bound as ``uuids`` (a list) as one ``UNION
    ALL``: one round trip per cell. ``with_tags`` from microversion 2.26,
    ``with_system_metadata`` from 2.73, ``with_service`` (the host's ``nova-compute``
    service, as Nova's ``Instance.services``: not for a deleted instance) from 2.16;
    ``array``: the executor binds a list as one array parameter
    (:attr:`~cells.executor.Executor.binds_arrays`)."""
    ie, ic, md = instance_extra.c, instance_info_caches.c, instance_metadata.c
    bdm, fault, tg = block_device_mapping.c, instance_faults.c, tags.c
    of = _member(array)
    parts = [
        # Nova joins instance_extra and instance_info_caches whatever their deleted flag
        # (a deleted server still shows its flavor and addresses); not so metadata.
        _side("flavor", ie.instance_uuid, a=ie.flavor).where(of(ie.instance_uuid)),
        _side("network", ic.instance_uuid, a=ic.network_info).where(
            of(ic.instance_uuid)
        ),
        _side("metadata", md.instance_uuid, id_=md.id, a=md.key, b=md.value).where(
            of(md.instance_uuid), md.deleted == 0
        ),
        _side(
            "fault",
            fault.instance_uuid,
            id_=fault.id,
            a=fault.message,
            b=fault.details,
            number=fault.code,
            when=fault.created_at,
        ).where(of(fault.instance_uuid), fault.deleted == 0),
        _side(
            "volumes", bdm.instance_uuid, id_=bdm.id, a=bdm.volume_id,
            number=bdm.delete_on_termination,
        ).where(of(bdm.instance_uuid), bdm.deleted == 0, bdm.volume_id.is_not(None)),
    ]  # fmt: skip
    if with_tags:
        parts.append(_side("tags", tg.resource_id, a=tg.tag).where(of(tg.resource_id)))
    if with_system_metadata:
        sm = instance_system_metadata.c
        wanted = or_(sm.key == "locked_reason", sm.key.startswith("image_", autoescape=True))
        parts.append(
            _side("sysmeta", sm.instance_uuid, id_=sm.id, a=sm.key, b=sm.value).where(
                of(sm.instance_uuid), sm.deleted == 0, wanted
            )
        )
    if with_service:
        i, sv = instances.c, services.c
        flags = case((sv.forced_down == true(), 2), (sv.disabled == true(), 1), else_=0)
        on = and_(sv.host == i.host, sv.binary == "nova-compute", i.deleted == 0)
        parts.append(
            _side(
                "service", i.uuid, id_=sv.id, number=flags,
                when=func.coalesce(sv.last_seen_up, sv.created_at),
            ).select_from(instances.join(services, on)).where(of(i.uuid))
        )  # fmt: skip
    return union_all(*parts)
