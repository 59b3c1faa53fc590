"""Nova's detail fields that come from the side tables, rendered from :class:`Details`.

``addresses`` (per network label, fixed then floating IPs, with ``OS-EXT-IPS:type`` and
``OS-EXT-IPS-MAC:mac_addr``), ``metadata``, ``flavor`` (``{"id", "links"}`` before 2.47,
embedded from 2.47), ``tags`` (2.26), the latest ``fault`` (ERROR and DELETED only; its
``details`` only for admins or when the code is not 500) and
``os-extended-volumes:volumes_attached`` (``delete_on_termination`` from 2.3).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from cells.details import Details
from gateway.params import Version

__all__ = ["FAULT_STATUSES", "addresses", "fault", "flavor", "volumes_attached"]

FAULT_STATUSES = frozenset({"ERROR", "DELETED"})
"""Statuses whose servers show their latest fault (Nova's ``_fault_statuses``)."""

Bookmark = Callable[[str, str], list[dict[str, str]]]


def addresses(details: Details) -> dict[str, list[dict[str, object]]]:
    """Nova's ``addresses``: per network label, fixed IPs then floating IPs."""
    return {
        label: [
            {
                "version": a.version,
                "addr": a.addr,
                "OS-EXT-IPS:type": a.type,
                "OS-EXT-IPS-MAC:mac_addr": a.mac,
            }
            for a in entries
        ]
        for label, entries in details.addresses
    }


def flavor(
    details: Details, version: Version, bookmark: Bookmark, *, extra_specs: bool = True
) -> dict[str, object]:
    """``{"id", "links"}`` before 2.47 (the flavor's ``flavorid``), embedded from 2.47 (its
    ``extra_specs`` only when the policy allows); ``{}`` when the instance has no readable
    flavor (as Nova)."""
    current = details.flavor
    if current is None:
        return {}
    if version >= (2, 47):
        embedded: dict[str, object] = {
            "vcpus": current.vcpus,
            "ram": current.memory_mb,
            "disk": current.root_gb,
            "ephemeral": current.ephemeral_gb,
            "swap": current.swap,
            "original_name": current.name,
        }
        if extra_specs:
            embedded["extra_specs"] = dict(current.extra_specs)
        return embedded
    return {"id": current.flavorid, "links": bookmark("flavors", current.flavorid)}


def fault(details: Details, status: str, is_admin: bool) -> dict[str, object] | None:
    """The latest fault for an ERROR or DELETED server, or ``None`` (no ``fault`` key); a
    500's details only for an administrator (Nova's ``context.is_admin``)."""
    latest = details.fault
    if latest is None or status not in FAULT_STATUSES:
        return None
    out: dict[str, object] = {
        "code": latest.code,
        "created": _isotime(latest.created_at),
        "message": latest.message,
    }
    if latest.details and (is_admin or latest.code != 500):
        out["details"] = latest.details
    return out


def volumes_attached(details: Details, version: Version) -> list[dict[str, object]]:
    """``os-extended-volumes:volumes_attached``."""
    if version >= (2, 3):
        return [
            {"id": v.volume_id, "delete_on_termination": v.delete_on_termination}
            for v in details.volumes
        ]
    return [{"id": v.volume_id} for v in details.volumes]


def _isotime(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def host_status(host: object, side: Details, now: datetime, down_time_s: float) -> str:
    """Nova's ``host_status`` (2.16) from the host's ``nova-compute`` service: no host or
    no service row ``""``, forced down ``DOWN``, disabled ``MAINTENANCE``, seen up within
    ``down_time_s`` of ``now`` (either way) ``UP``, else ``UNKNOWN``."""
    if not host or side.service is None:
        return ""
    flags, seen = side.service
    if flags == 2:
        return "DOWN"
    if flags == 1:
        return "MAINTENANCE"
    if seen is not None and abs((now - seen).total_seconds()) <= down_time_s:
        return "UP"
    return "UNKNOWN"
