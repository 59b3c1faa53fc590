"""Nova's ``ip`` and ``ip6`` filters through Neutron, when one is configured.

Nova 34 with Neutron's ``ip-substring-filtering`` extension (every ML2 Neutron) asks
Neutron for the ports whose fixed IPs contain each given value (``fixed_ips=
ip_address_substr=<value>``, one call per filter; an empty value asks nothing), and lists the
servers those ports belong to: their ``device_id``s become the ``uuid`` filter, *added* to
any ``uuid`` filter the caller gave (Nova extends the list), and no port at all is an empty
listing. cellgate does the same.

Without the extension (Neutron's ``GET /v2.0/extensions`` does not list it; the list is kept
10 minutes, as Nova keeps it), or without a Neutron (not configured, or the Keystone catalog
names none), the filters are Nova's other rule, a regex over the network info cache, in each
cell's SQL (:mod:`cells.ipmatch`).

A Neutron that fails, hangs or is skipped by its open breaker cannot answer the filter:
the listing is a 503 naming Neutron (Nova logs the error and lists nothing, which looks
like "no such server").
"""

from __future__ import annotations

import dataclasses

from cells.filters import InstanceFilters
from gateway.errors import ServiceUnavailable
from gateway.neutron import NotInCatalog
from gateway.state import AppState

__all__ = ["NEUTRON_UNAVAILABLE", "SUBSTRING_FILTERING", "ip_filters_by_neutron"]

SUBSTRING_FILTERING = "ip-substring-filtering"

NEUTRON_UNAVAILABLE = "Neutron is not responding; the ip and ip6 filters cannot be answered."


async def ip_filters_by_neutron(state: AppState, filters: InstanceFilters) -> InstanceFilters:
    """``filters`` with ``ip``/``ip6`` answered by Neutron (a ``uuid`` filter), or as
    given when no Neutron is configured; raises a 503 when Neutron cannot answer."""
    if state.neutron is None or (filters.ip is None and filters.ip6 is None):
        return filters
    usable = await state.neutron.has_extension(SUBSTRING_FILTERING)
    if usable is None:
        raise ServiceUnavailable(NEUTRON_UNAVAILABLE, state.settings.retry_after_s)
    if usable is not True:  # no such extension, or no Neutron in the catalog
        return filters
    found: list[str] = []
    for address in (filters.ip, filters.ip6):
        if not address:
            continue
        ids = await state.neutron.device_ids(address)
        if isinstance(ids, NotInCatalog):  # no Neutron in the catalog: as without one
            return filters
        if ids is None:
            raise ServiceUnavailable(NEUTRON_UNAVAILABLE, state.settings.retry_after_s)
        found += ids
    if found and filters.uuids:
        found += filters.uuids
    return dataclasses.replace(filters, uuids=frozenset(found), ip=None, ip6=None)
