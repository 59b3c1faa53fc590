"""``security_groups`` from Neutron, as Nova's detail and show views read it.

Nova asks Neutron for the ports of the page's servers (``GET /v2.0/ports?device_id=...``,
fields ``device_id`` and ``security_groups``, 150 ids per call), then for those ports'
groups (``GET /v2.0/security-groups?id=...``, fields ``id`` and ``name``), and shows one
``{"name": ...}`` per group of each port, in port order (a nameless group shows its id; a
group the caller cannot read is left out). A server without a port, or whose ports have no
group, has no ``security_groups`` key.

Where Neutron is (:func:`neutron_for`):

- its URL: ``neutron_url`` (``CELLGATE_NEUTRON_URL``), else ``nova.conf``'s ``[neutron]
  endpoint_override`` (``CELLGATE_NEUTRON``), else the ``network`` endpoint of a service
  user's Keystone catalog (unless ``neutron_from_catalog`` is off);
- its token: that of ``[neutron]``'s own password credentials when it has them (region and
  ``valid_interfaces`` from there too), else with ``auth_mode=keystone`` the service user
  that validates tokens (``keystone_interface``, ``keystone_region_name``), else none (a URL
  is then needed: a Neutron with ``auth_strategy = noauth``, or one behind a trusted proxy);
- neither a URL nor a Keystone: not configured. Every detail entry keeps
  ``security_groups: [{"name": "default"}]``, as before (nothing to ask).

Nova asks with the caller's token; cellgate asks with its service user's (or none): the
listing already decided which servers the caller sees, and a group the caller could not
read but the service user can is shown by name (Nova would leave it out).

Neutron is treated like a cell: one deadline per page (``neutron_timeout_s``), a breaker
(:class:`cells.Breaker`, the cells' ``breaker_failures`` and ``breaker_cooldown_s``). A
Neutron that fails, hangs or is skipped by its open breaker does not fail the listing (Nova
answers 500): the page is served without any ``security_groups`` key and the response says
``X-Neutron-Unavailable: security_groups``; such a page is not cached.

Over the house size on purpose: the client, its breaker and deadline and the batched port
and group reads are one conversation with Neutron, read top to bottom.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import httpx

from cells.breaker import Breaker
from gateway.settings import NeutronSettings, Settings

__all__ = [
    "CHUNK",
    "LEFT_OUT_HEADER",
    "Groups",
    "Neutron",
    "NeutronSource",
    "catalog_locate",
    "neutron_for",
]

log = logging.getLogger(__name__)

CHUNK = 150
"""Ids per Neutron query (Nova's ``MAX_SEARCH_IDS``: the ids travel in the URL)."""

EXTENSIONS_TTL_S = 600.0
"""How long Neutron's extension list is kept (Nova's ``_refresh_neutron_extensions_cache``)."""

T = TypeVar("T")

LEFT_OUT_HEADER = "X-Neutron-Unavailable"
"""The response header naming what a Neutron failure left out (``security_groups``)."""

Groups = dict[str, list[dict[str, str]]]
"""Per server uuid, its ``security_groups`` entries (servers without any are absent)."""


class NotInCatalog(Exception):
    """The Keystone catalog names no ``network`` endpoint: Neutron is not configured."""


NOT_IN_CATALOG = NotInCatalog("no network endpoint in the catalog")


@dataclass(frozen=True)
class NeutronSource:
    """How to reach Neutron now: its URL and the headers to send (a token, or none)."""

    url: str
    headers: Mapping[str, str]


Locate = Callable[[], Awaitable[NeutronSource]]


def _chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start : start + CHUNK])


class Neutron:
    """Reads ``security_groups`` for pages of servers (see the module docstring)."""

    def __init__(
        self,
        locate: Locate,
        *,
        timeout_s: float,
        breaker: Breaker,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._locate = locate
        self._timeout_s = timeout_s
        self.breaker = breaker
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout_s)
        self._extensions: tuple[float, frozenset[str]] | None = None

    @classmethod
    def at(cls, url: str, *, timeout_s: float, breaker: Breaker, **kwargs: object) -> Neutron:
        """A Neutron at a fixed ``url``, asked without a token."""
        source = NeutronSource(url.rstrip("/"), {})

        async def locate() -> NeutronSource:
            return source

        return cls(locate, timeout_s=timeout_s, breaker=breaker, **kwargs)  # type: ignore[arg-type]  # kwargs are __init__'s other keywords, checked there

    async def aclose(self) -> None:
        await self._http.aclose()

    async def security_groups(self, uuids: Sequence[str]) -> Groups | NotInCatalog | None:
        """The groups of ``uuids``' ports, ``None`` when Neutron could not tell in time
        (failed, hung, or skipped by its open breaker), :data:`NOT_IN_CATALOG` when the
        catalog names no Neutron (not configured: no failure)."""
        if not uuids:
            return {}
        return await self._guarded(lambda: self._read(list(dict.fromkeys(uuids))))

    async def device_ids(self, address: str) -> list[str] | NotInCatalog | None:
        """The ``device_id`` of every port with a fixed IP containing ``address`` (Neutron's
        ``ip-substring-filtering``: ``fixed_ips=ip_address_substr=...``), as Nova's ``ip``
        and ``ip6`` filters ask; ``None`` and :data:`NOT_IN_CATALOG` as
        :meth:`security_groups`."""

        async def ask() -> list[str]:
            params: list[tuple[str, str | int | float | bool | None]] = [
                ("fixed_ips", f"ip_address_substr={address}"),
                ("fields", "device_id"),
            ]
            ports = await self._list(await self._locate(), "ports", params)
            return [str(port["device_id"]) for port in ports if port.get("device_id")]

        return await self._guarded(ask)

    async def has_extension(self, alias: str) -> bool | NotInCatalog | None:
        """Whether Neutron lists the extension ``alias`` (``GET /v2.0/extensions``, kept
        :data:`EXTENSIONS_TTL_S` as Nova keeps it); ``None`` and :data:`NOT_IN_CATALOG` as
        :meth:`security_groups`."""
        now = time.monotonic()
        if self._extensions is not None and now - self._extensions[0] < EXTENSIONS_TTL_S:
            return alias in self._extensions[1]

        async def ask() -> frozenset[str]:
            found = await self._list(await self._locate(), "extensions", [])
            return frozenset(str(item.get("alias")) for item in found)

        aliases = await self._guarded(ask)
        if not isinstance(aliases, frozenset):
            return aliases
        self._extensions = (now, aliases)
        return alias in aliases

    async def _guarded(self, ask: Callable[[], Awaitable[T]]) -> T | NotInCatalog | None:
        """``ask()`` under the deadline and the breaker (see :meth:`security_groups`)."""
        if not self.breaker.allow():
            log.warning("neutron skipped: circuit breaker open")
            return None
        try:
            async with asyncio.timeout(self._timeout_s):
                found = await ask()
        except NotInCatalog as absent:
            self.breaker.record_success()  # Keystone answered: there is no Neutron
            return absent
        except TimeoutError:
            self.breaker.record_failure(timed_out=True)
            log.warning("neutron timed out after %g s", self._timeout_s)
            return None
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError) as exc:
            self.breaker.record_failure(timed_out=False)
            log.warning("neutron failed: %s", exc)
            return None
        self.breaker.record_success()
        return found

    async def _read(self, uuids: list[str]) -> Groups:
        source = await self._locate()
        ports: list[Mapping[str, object]] = []
        for ids in _chunks(uuids):
            params: list[tuple[str, str | int | float | bool | None]] = [
                ("device_id", i) for i in ids
            ]
            params += [("fields", "device_id"), ("fields", "security_groups")]
            # Nova ignores a port that vanished meanwhile (PortNotFoundClient, a 404).
            ports += await self._list(source, "ports", params, missing_ok=True)
        wanted = list(dict.fromkeys(g for p in ports for g in _ids(p.get("security_groups"))))
        found: dict[str, Mapping[str, object]] = {}
        for ids in _chunks(wanted):
            params = [("id", i) for i in ids]
            params += [("fields", "id"), ("fields", "name")]
            for item in await self._list(source, "security-groups", params):
                found[str(item["id"])] = item
        out: Groups = {}
        for port in ports:
            for group_id in _ids(port.get("security_groups")):
                group = found.get(group_id)
                if group is not None:  # one the caller may not read is left out (as Nova)
                    name = group.get("name") or group_id
                    out.setdefault(str(port["device_id"]), []).append({"name": str(name)})
        return out

    async def _list(
        self,
        source: NeutronSource,
        collection: str,
        params: list[tuple[str, str | int | float | bool | None]],
        *,
        missing_ok: bool = False,
    ) -> list[Mapping[str, object]]:
        url = f"{source.url}/v2.0/{collection}"
        query = httpx.QueryParams(params)
        response = await self._http.get(url, params=query, headers=dict(source.headers))
        if missing_ok and response.status_code == 404:
            return []
        response.raise_for_status()
        items = response.json()[collection.replace("-", "_")]
        if not isinstance(items, list):
            raise ValueError(f"neutron: {collection} is not a list")
        return [item for item in items if isinstance(item, Mapping)]


def _ids(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def catalog_locate(
    session: object,
    *,
    interface: str | list[str],
    region_name: str | None,
    override: str | None,
) -> Locate:
    """Neutron through a keystoneauth1 session: ``override`` or the catalog's ``network``
    endpoint, with the session's token (its own cache renews it; asked in a thread)."""

    def ask() -> NeutronSource:
        url = override or session.get_endpoint(  # type: ignore[attr-defined]  # a keystoneauth1 Session (optional extra, untyped) held as object
            service_type="network", interface=interface, region_name=region_name
        )
        if not url:
            raise NOT_IN_CATALOG
        headers = session.get_auth_headers() or {}  # type: ignore[attr-defined]  # the keystoneauth1 Session, as above
        return NeutronSource(str(url).rstrip("/"), dict(headers))

    async def locate() -> NeutronSource:
        try:
            return await asyncio.to_thread(ask)
        except NotInCatalog:
            raise
        except Exception as exc:  # keystoneauth1's errors: Keystone's fault, not the page's
            if type(exc).__name__ == "EndpointNotFound":
                raise NOT_IN_CATALOG from exc
            raise httpx.TransportError(f"neutron endpoint or token: {exc}") from exc

    return locate


def _own_session(neutron: NeutronSettings) -> object | None:
    """A keystoneauth1 session from ``[neutron]``'s password credentials, if complete."""
    if neutron.auth_type not in (None, "password", "v3password"):
        return None
    if not (neutron.auth_url and neutron.username and neutron.password):
        return None
    try:  # keystoneauth1 is the ``keystone`` extra's
        from keystoneauth1 import session as ks_session
        from keystoneauth1.identity import generic
    except ImportError as exc:
        raise RuntimeError(f"[neutron] credentials need cellgate[keystone]: {exc}") from exc
    auth = generic.Password(
        auth_url=neutron.auth_url,
        username=neutron.username,
        password=neutron.password.get_secret_value(),
        project_name=neutron.project_name,
        user_domain_id=neutron.user_domain_id,
        user_domain_name=None if neutron.user_domain_id else neutron.user_domain_name,
        project_domain_id=neutron.project_domain_id,
        project_domain_name=None if neutron.project_domain_id else neutron.project_domain_name,
    )
    return ks_session.Session(auth=auth)


def neutron_for(settings: Settings, keystone_session: object | None) -> Neutron | None:
    """The Neutron ``settings`` name (see the module docstring), or ``None``.

    ``keystone_session`` is the token validator's (``auth_mode=keystone``)."""
    conf = settings.neutron
    url = settings.neutron_url or (conf.endpoint_override if conf is not None else None)
    breaker = Breaker(settings.breaker_failures, settings.breaker_cooldown_s)
    timeout_s = settings.neutron_timeout_s
    own = _own_session(conf) if conf is not None else None
    session = own or keystone_session
    if session is not None and (url or settings.neutron_from_catalog):
        if own is not None and conf is not None:
            interface: str | list[str] = conf.valid_interfaces
            region = conf.region_name
        else:
            interface, region = settings.keystone_interface, settings.keystone_region_name
        locate = catalog_locate(session, interface=interface, region_name=region, override=url)
        log.info("security_groups from Neutron at %s", url or "the catalog's network endpoint")
        return Neutron(locate, timeout_s=timeout_s, breaker=breaker)
    if url:
        log.info("security_groups from Neutron at %s (no token)", url)
        return Neutron.at(url, timeout_s=timeout_s, breaker=breaker)
    return None
