"""Nova's v2.1 server representations, built from narrow ``instances`` rows and the
side data of :mod:`cells.details` (rendered by :mod:`gateway.detailviews`).

A row is a mapping keyed by the column names of :data:`cells.schema.instances`. The detail
view follows Nova's ``GET /servers/detail`` field by field for the negotiated microversion
(2.1 to 2.104; the fields of 2.73 and later from the request spec and system metadata
are :mod:`gateway.specfields`'). Where Nova reads another service that the gateway does
not have, the field keeps its key with a fixed value so clients that index it still work:

* ``security_groups`` is ``[{"name": "default"}]`` when no Neutron is configured (with one,
  it is Nova's: :mod:`gateway.neutron`, passed in ``ViewContext.security_groups``);
* ``OS-EXT-SRV-ATTR:user_data`` (2.3) and ``trusted_image_certificates`` (2.63) are
  ``None``;

Which policy-guarded fields appear is :class:`~gateway.policy.ViewGrants`' to say (Nova's
``os-extended-server-attributes``, ``servers:show:host_status`` and ``:unknown-only``,
``servers:show:flavor-extra-specs``; a 500 fault's details for ``context_is_admin``).
* ``updated`` falls back to ``created`` when ``updated_at`` is NULL (Nova prints the time
  of the request, which would make identical pages differ);
* ``OS-EXT-AZ:availability_zone`` of a hosted server is its host's zone
  (:mod:`gateway.zones`, given in :attr:`ViewContext.host_zones`).

Over the house size on purpose: Nova's server representation, one function per view
(summary, detail, the stubs, the next link) sharing private helpers for links, images and
times; the side tables' fields are :mod:`gateway.detailviews`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlencode, urlsplit

from cells.details import Details
from cells.novajson import RequestSpecInfo
from gateway import detailviews
from gateway.params import Version
from gateway.policy import ViewGrants
from gateway.specfields import add_recent_fields
from gateway.statuses import UNKNOWN_STATUS, status_from_state

__all__ = [
    "ViewContext",
    "next_link",
    "server_detail",
    "server_summary",
    "stub_detail",
    "stub_show",
    "stub_summary",
]

Row = Mapping[str, object]

# Nova shows `progress` only while an operation can be in flight (and for ACTIVE, where it
# is usually 0 or 100).
_PROGRESS_STATUSES: Final = frozenset(
    {"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"}
)
_EPOCH: Final = datetime(1970, 1, 1)
_NOT_RECORDED: Final = "UNKNOWN"  # Nova's word for what a request spec does not hold


@dataclass(frozen=True)
class ViewContext:
    """What a view needs to know about the request.

    ``base_url`` is the public root without a trailing slash (``http://host:8774``);
    ``project_in_url`` is the project id segment when the request used
    ``/v2.1/{project_id}/servers``, so links keep it; ``grants`` is what the policy lets
    the caller see.
    """

    base_url: str
    project_in_url: str | None
    version: Version
    grants: ViewGrants
    default_availability_zone: str = "nova"
    # Per uuid from Neutron; None: no Neutron configured (every server shows "default").
    security_groups: Mapping[str, Sequence[Mapping[str, str]]] | None = None
    service_down_time_s: float = 60.0
    # A hosted server's zone per host (gateway.zones); a host not in it: the default zone.
    host_zones: Mapping[str, str] = field(default_factory=dict)


def server_summary(row: Row, ctx: ViewContext) -> dict[str, object]:
    """``GET /servers`` item: ``id``, ``name`` and the self and bookmark links."""
    uuid = str(row["uuid"])
    return {"id": uuid, "name": row.get("display_name"), "links": _links(ctx, uuid)}


_NO_DETAILS = Details()


def server_detail(
    row: Row,
    ctx: ViewContext,
    details: Details | None = None,
    spec: RequestSpecInfo | None = None,
    *,
    show: bool = False,
) -> dict[str, object]:
    """``GET /servers/detail`` item for ``ctx.version``, as Nova shows it (``show``: the
    ``GET /servers/{id}`` body's, which differs in :mod:`gateway.specfields`).

    ``details`` is the instance's side data (:meth:`cells.client.CellClient.details`),
    ``spec`` its request spec (read from 2.96).
    """
    side = details or _NO_DETAILS
    uuid = str(row["uuid"])
    status = _status(row)
    created = _isotime(row.get("created_at"))
    access_v4 = row.get("access_ip_v4")
    access_v6 = row.get("access_ip_v6")
    server: dict[str, object] = {
        "id": uuid,
        "name": row.get("display_name"),
        "status": status,
        "tenant_id": row.get("project_id") or "",
        "user_id": row.get("user_id") or "",
        "metadata": dict(side.metadata),
        "hostId": _host_id(row),
        "image": _image(row, ctx),
        "flavor": detailviews.flavor(
            side,
            ctx.version,
            lambda kind, i: _bookmark(ctx, kind, i),
            extra_specs=ctx.grants.flavor_extra_specs,
        ),
        "created": created,
        "updated": _isotime(row.get("updated_at")) or created,
        "addresses": detailviews.addresses(side),
        "accessIPv4": "" if access_v4 is None else str(access_v4),
        "accessIPv6": "" if access_v6 is None else str(access_v6),
        "links": _links(ctx, uuid),
        "OS-DCF:diskConfig": "AUTO" if row.get("auto_disk_config") else "MANUAL",
    }
    fault = detailviews.fault(side, status, ctx.grants.fault_details)
    if fault is not None:
        server["fault"] = fault
    if status in _PROGRESS_STATUSES:
        # Nova: instance.get("progress", 0), and the column is always loaded: NULL is null.
        progress = row.get("progress")
        server["progress"] = progress if isinstance(progress, int) else None
    server["OS-EXT-AZ:availability_zone"] = _availability_zone(row, ctx)
    server["config_drive"] = row.get("config_drive")
    server["key_name"] = row.get("key_name")
    server["OS-SRV-USG:launched_at"] = _usage_time(row.get("launched_at"))
    server["OS-SRV-USG:terminated_at"] = _usage_time(row.get("terminated_at"))
    if ctx.security_groups is None:
        server["security_groups"] = [{"name": "default"}]
    elif groups := ctx.security_groups.get(uuid):  # Nova: no port, no group, no key
        server["security_groups"] = [dict(g) for g in groups]
    if ctx.grants.extended_attributes:
        server.update(_extended_attributes(row, ctx.version))
    server["OS-EXT-STS:task_state"] = row.get("task_state")
    server["OS-EXT-STS:vm_state"] = row.get("vm_state")
    server["OS-EXT-STS:power_state"] = row.get("power_state")
    server["os-extended-volumes:volumes_attached"] = detailviews.volumes_attached(side, ctx.version)
    if ctx.version >= (2, 16):
        now = datetime.now(UTC).replace(tzinfo=None)  # the columns hold naive UTC
        host_status = detailviews.host_status(row.get("host"), side, now, ctx.service_down_time_s)
        shown = ctx.grants.host_status
        if shown == "all" or (shown == "unknown-only" and host_status == "UNKNOWN"):
            server["host_status"] = host_status
    if ctx.version >= (2, 9):
        # Nova derives `locked` from `locked_by`; the `locked` filter reads the `locked`
        # column. Either being set means the instance is locked.
        server["locked"] = bool(row.get("locked")) or bool(row.get("locked_by"))
    if ctx.version >= (2, 19):
        server["description"] = row.get("display_description")
    if ctx.version >= (2, 26):
        server["tags"] = list(side.tags)
    if ctx.version >= (2, 63):
        server["trusted_image_certificates"] = None
    if ctx.version >= (2, 90) and not ctx.grants.extended_attributes:
        server["OS-EXT-SRV-ATTR:hostname"] = row.get("hostname")
    add_recent_fields(server, side, spec, ctx.version, show=show)
    return server


def _availability_zone(row: Row, ctx: ViewContext) -> str:
    """Nova's rule: a hosted server is in its host's zone (its aggregate's, else the
    default zone); a server on no host shows its row's zone, or ``""``."""
    host = row.get("host")
    if host:
        return ctx.host_zones.get(str(host)) or ctx.default_availability_zone
    zone = row.get("availability_zone")
    return str(zone or "")


def stub_summary(uuid: str, ctx: ViewContext) -> dict[str, object]:
    """``GET /servers`` item for an instance in an unreachable cell (2.69+)."""
    return {"id": uuid, "status": UNKNOWN_STATUS, "links": _links(ctx, uuid)}


def stub_detail(
    uuid: str, project_id: str, created_at: datetime, ctx: ViewContext
) -> dict[str, object]:
    """``GET /servers/detail`` item for an instance in an unreachable cell (2.69+).

    Built from the instance mapping alone: ``created`` is the mapping's ``created_at``.
    """
    return {
        "id": uuid,
        "status": UNKNOWN_STATUS,
        "tenant_id": project_id,
        "created": _isotime(created_at),
        "links": _links(ctx, uuid),
    }


def stub_show(
    uuid: str,
    project_id: str,
    created_at: datetime | None,
    spec: RequestSpecInfo,
    ctx: ViewContext,
) -> dict[str, object]:
    """``GET /servers/{id}`` for an instance in an unreachable cell (2.69+), as Nova's
    ``_show_from_down_cell``: the detail stub plus, from the request spec, the embedded
    flavor, the image, the availability zone asked for at boot (``UNKNOWN`` when none was)
    and the user (``UNKNOWN`` for a spec that predates it); ``power_state`` is 0 (NOSTATE).

    ``created`` is the mapping's ``created_at`` (the epoch if it has none, as the listing's
    stubs do).
    """
    stub = stub_detail(uuid, project_id, created_at or _EPOCH, ctx)
    # No 2.98 image properties: they are the cell's (Nova's down-cell schema has none).
    stub["image"] = _image({"image_ref": spec.image_id}, ctx)
    stub["flavor"] = detailviews.flavor(
        Details(flavor=spec.flavor),
        ctx.version,
        lambda kind, i: _bookmark(ctx, kind, i),
        extra_specs=ctx.grants.flavor_extra_specs,
    )
    stub["OS-EXT-AZ:availability_zone"] = spec.availability_zone or _NOT_RECORDED
    stub["OS-EXT-STS:power_state"] = 0
    stub["user_id"] = spec.user_id or _NOT_RECORDED
    return stub


def next_link(
    ctx: ViewContext, collection: str, query_items: Sequence[tuple[str, str]], marker: str
) -> dict[str, str]:
    """The ``servers_links`` entry for the page after ``marker``.

    ``collection`` is ``"servers"`` or ``"servers/detail"``. Unlike Nova, which keeps one
    value per parameter, repeated parameters (``sort_key``, ``status``...) are kept in
    their original order so the next page is the same query; only ``marker`` is replaced.
    """
    params = [(key, value) for key, value in query_items if key != "marker"]
    params.append(("marker", marker))
    href = f"{_versioned_root(ctx)}/{collection}?{urlencode(params)}"
    return {"rel": "next", "href": href}


def _versioned_root(ctx: ViewContext) -> str:
    return _join(f"{ctx.base_url.rstrip('/')}/v2.1", ctx.project_in_url)


def _bookmark_root(ctx: ViewContext) -> str:
    return _join(ctx.base_url.rstrip("/"), ctx.project_in_url)


def _join(root: str, project: str | None) -> str:
    return f"{root}/{project}" if project else root


def _links(ctx: ViewContext, uuid: str) -> list[dict[str, str]]:
    return [
        {"rel": "self", "href": f"{_versioned_root(ctx)}/servers/{uuid}"},
        {"rel": "bookmark", "href": f"{_bookmark_root(ctx)}/servers/{uuid}"},
    ]


def _bookmark(ctx: ViewContext, collection: str, identifier: str) -> list[dict[str, str]]:
    return [{"rel": "bookmark", "href": f"{_bookmark_root(ctx)}/{collection}/{identifier}"}]


def _status(row: Row) -> str:
    # A deleted instance is DELETED whatever its states say, as in Nova.
    if row.get("deleted"):
        return "DELETED"
    return status_from_state(_str_or_none(row.get("vm_state")), _str_or_none(row.get("task_state")))


def _host_id(row: Row) -> str:
    """Nova's ``hostId``: hides the host name but is stable per (project, host)."""
    host = row.get("host")
    if not host:
        return ""
    # Nova hashes str(project_id), so a NULL project hashes as "None".
    data = f"{row.get('project_id')}{host}".encode()
    return hashlib.sha224(data).hexdigest()


def _image(row: Row, ctx: ViewContext) -> dict[str, object] | str:
    image_ref = row.get("image_ref")
    if not image_ref:
        return ""
    # image_ref may be a bare id or a Glance URL; the id is the last path segment.
    image_id = urlsplit(str(image_ref)).path.rsplit("/", 1)[-1]
    return {"id": image_id, "links": _bookmark(ctx, "images", image_id)}


def _extended_attributes(row: Row, version: Version) -> dict[str, object]:
    """The admin-only ``OS-EXT-SRV-ATTR:*`` fields."""
    instance_id = row.get("id")
    attributes: dict[str, object] = {
        "OS-EXT-SRV-ATTR:host": row.get("host"),
        "OS-EXT-SRV-ATTR:instance_name": (
            f"instance-{instance_id:08x}" if isinstance(instance_id, int) else None
        ),
        "OS-EXT-SRV-ATTR:hypervisor_hostname": row.get("node"),
    }
    if version >= (2, 3):
        attributes.update(
            {
                "OS-EXT-SRV-ATTR:reservation_id": row.get("reservation_id"),
                "OS-EXT-SRV-ATTR:launch_index": row.get("launch_index"),
                "OS-EXT-SRV-ATTR:hostname": row.get("hostname"),
                "OS-EXT-SRV-ATTR:kernel_id": row.get("kernel_id"),
                "OS-EXT-SRV-ATTR:ramdisk_id": row.get("ramdisk_id"),
                "OS-EXT-SRV-ATTR:root_device_name": row.get("root_device_name"),
                "OS-EXT-SRV-ATTR:user_data": None,
            }
        )
    return attributes


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _as_utc_naive(value: object) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _isotime(value: object) -> str | None:
    """``created``/``updated`` format: ``2024-05-01T12:00:00Z``; ``None`` if absent."""
    moment = _as_utc_naive(value)
    # isoformat, not strftime("%Y-%m-%dT%H:%M:%SZ"): the same text, in half the time (it
    # is called three times per server of a detail page).
    return None if moment is None else moment.isoformat(timespec="seconds") + "Z"


def _usage_time(value: object) -> str | None:
    """``OS-SRV-USG:*`` format: ``2024-05-01T12:00:00.000000`` (no zone), or ``None``."""
    moment = _as_utc_naive(value)
    return None if moment is None else moment.isoformat(timespec="microseconds")
