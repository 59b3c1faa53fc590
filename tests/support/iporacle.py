"""Nova's ``ip``/``ip6`` rule without Neutron, written out in Python, and the info caches
read straight from the cell databases (independent of :mod:`cells.ipmatch`)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from sqlalchemy import select

from cells.schema import instance_info_caches
from tests.support.oracle import Record, _read_all

if TYPE_CHECKING:
    from tests.support.cellsets import CellSet

__all__ = ["load_info_caches", "nova_ip_matches", "with_ip"]


def nova_ip_matches(network_info: str | None, ip: str | None, ip6: str | None) -> bool:
    """Nova 34's ``_ip_filter`` on one cache (a cache that is not JSON: no match)."""
    try:
        vifs = json.loads(network_info or "[]")
    except ValueError:
        return False
    v4 = re.compile(str(ip))  # Nova compiles str(None) for a filter not given
    v6 = re.compile(str(ip6))
    for vif in vifs:
        network = vif.get("network")
        for subnet in network["subnets"] if network else []:
            for fixed in subnet["ips"]:
                address = fixed.get("address")
                if not address:
                    continue
                version = fixed.get("version") or (6 if ":" in address else 4)
                if (version == 4 and v4.match(address)) or (version == 6 and v6.match(address)):
                    return True
    return False


async def load_info_caches(cell_set: CellSet) -> dict[str, str | None]:
    """``network_info`` per instance uuid, from every cell."""
    out: dict[str, str | None] = {}
    query = select(instance_info_caches.c.instance_uuid, instance_info_caches.c.network_info)
    for cell in cell_set.cells:
        for row in await _read_all(cell.url, query):
            out[str(row["instance_uuid"])] = row["network_info"]  # type: ignore[assignment]  # network_info is JSON text (a row value is SqlValue)
    return out


def with_ip(
    rows: list[Record], caches: dict[str, str | None], ip: str | None, ip6: str | None
) -> list[Record]:
    """The ``rows`` whose info cache Nova's rule keeps."""
    return [r for r in rows if nova_ip_matches(caches.get(str(r["uuid"])), ip, ip6)]
