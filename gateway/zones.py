"""The availability zone Nova shows for a hosted server: its host's, from the API
database's aggregates, kept briefly (Nova keeps it an hour in its cache).

Nova's ``get_instance_availability_zone``: a server on no host shows its row's
``availability_zone`` (or ``""``); a hosted one shows the ``availability_zone`` metadata of
its host's first aggregate that has one, else ``default_availability_zone``. Nova refetches
a cached host's zone when the instance's own column names another; so does this cache.

While the API database cannot answer, a host's last known zone is shown past its TTL
(hosts seldom change aggregates; Nova itself keeps them an hour); a host never seen makes
the lookup fail (a 503), as a zone guessed from elsewhere could be wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from cachetools import LRUCache, TTLCache

from cells import ApiDatabase, ApiDatabaseUnavailable, Row

__all__ = ["HostZones"]

_NONE = ""  # cached: the host is in no zone (the default one is shown)


@dataclass(slots=True)
class HostZones:
    """host → its aggregate zone (``""``: none), for ``ttl_s`` seconds."""

    ttl_s: float = 60.0
    max_hosts: int = 100_000
    _cache: TTLCache[str, str] = field(init=False)
    _last_known: LRUCache[str, str] = field(init=False)  # past the TTL: for outages only

    def __post_init__(self) -> None:
        self._cache = TTLCache(maxsize=self.max_hosts, ttl=self.ttl_s)
        self._last_known = LRUCache(maxsize=self.max_hosts)

    def clear(self) -> None:
        """Forget every host's zone (an operator moved hosts between aggregates)."""
        self._cache.clear()
        self._last_known.clear()

    async def for_rows(self, api: ApiDatabase, rows: Iterable[Row], default: str) -> dict[str, str]:
        """The zone shown for the host of every hosted row (``default`` for a host in no
        zone): one API database read for the hosts not cached, or cached with a zone that
        a row's own column contradicts."""
        hosts: dict[str, None] = {}
        stale: set[str] = set()
        for row in rows:
            host = row.get("host")
            if not isinstance(host, str) or not host:
                continue
            hosts[host] = None
            cached = self._cache.get(host)
            own = row.get("availability_zone")
            if cached is None or (own is not None and own != (cached or default)):
                stale.add(host)
        if stale:
            try:
                found = await api.host_zones(sorted(stale))
            except ApiDatabaseUnavailable:
                if any(host not in self._last_known for host in stale):
                    raise
                known = {host: self._last_known[host] for host in hosts if host in stale}
                return {h: known.get(h, self._cache.get(h, _NONE)) or default for h in hosts}
            for host in stale:
                self._cache[host] = self._last_known[host] = found.get(host, _NONE)
        return {host: self._cache.get(host, _NONE) or default for host in hosts}
