"""The ``ip`` and ``ip6`` filters over the network info cache, in SQL on every backend.

Nova 34 without Neutron's ``ip-substring-filtering`` extension (``nova/compute/api.py``,
``_ip_filter``) reads each instance's ``instance_info_caches.network_info`` (a list of
VIFs), takes every VIF's fixed IPs (``vif["network"]["subnets"][*]["ips"][*]``: not the
subnets' gateway or DNS addresses, nor the floating IPs nested in a fixed IP), skips those
without an address and keeps the instance when one of them matches: a version-4 address
``re.match``-es ``ip``, or a version-6 address ``ip6``. Anchored at the start only, so
``ip=10.`` matches "10.0.0.5" (and "100.1.1.1": ``.`` is any character), not "110.1.1.1".
Both given: either may match. An IP without a (truthy) ``version`` takes its address's
(":" in it: 6, else 4), as Nova's network model derives it.

cellgate says this as one ``EXISTS`` on ``instance_info_caches`` (soft-deleted or not, as
Nova's relationship reads it), so the cells' keyset query stays exact and its cost stays
inside the cell deadline: ``json_array_elements`` and ``~`` on PostgreSQL, ``JSON_TABLE``
and ``REGEXP`` (on the address's bytes: case-sensitive, as Python's ``re``) on MariaDB,
``json_each`` and the ``REGEXP`` SQLite's driver gets from SQLAlchemy (Python's ``re``)
on SQLite. The pattern is wrapped as ``^(?:pattern)`` (``re.match``'s anchoring). Nova
matches with Python's ``re`` everywhere; PostgreSQL's and MariaDB's regex dialects agree
with it on what addresses are matched with (digits, hex, ``.``, ``:``, classes, anchors).

Differences kept: a cache whose text is not JSON matches nothing (Nova fails the listing);
a ``version`` written as a JSON string ("4") counts as that version (Nova's ``== 4``
would not).
"""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, bindparam
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import Boolean, String

__all__ = ["IpMatch", "anchored"]


_LEADING_FLAGS = re.compile(r"(?:\(\?[aiLmsux]+\))*")


def anchored(pattern: str) -> str:
    """``pattern`` as ``re.match`` applies it: at the start of the address only (leading
    inline flags such as ``(?i)`` stay first, where Python and PostgreSQL require them)."""
    flags = _LEADING_FLAGS.match(pattern)
    head = flags.group(0) if flags else ""
    end = "\n)" if "x" in head else ")"  # verbose: a trailing "# comment" ends at a newline
    return f"{head}^(?:{pattern[len(head) :]}{end}"


class IpMatch(ColumnElement[bool]):
    """True when a fixed IP in ``uuid``'s instance's info cache matches ``ip``/``ip6``."""

    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012
        ("uuid", InternalTraversal.dp_clauseelement),
        ("ip", InternalTraversal.dp_clauseelement),
        ("ip6", InternalTraversal.dp_clauseelement),
        ("given", InternalTraversal.dp_plain_obj),
    ]

    def __init__(self, uuid: ColumnElement[object], ip: str | None, ip6: str | None) -> None:
        self.uuid = uuid
        # A filter not given matches nothing (Nova compiles the string "None" for it): its
        # test is left out of the SQL, so which ones are given is part of the cache key.
        self.ip = bindparam(None, anchored(ip or ""), type_=String())
        self.ip6 = bindparam(None, anchored(ip6 or ""), type_=String())
        self.given = (ip is not None, ip6 is not None)
        self.type = Boolean()


def _parts(element: IpMatch, compiler: SQLCompiler, **kw: object) -> tuple[str, str, str]:
    four, six = element.given
    return (
        compiler.process(element.uuid, **kw),
        compiler.process(element.ip, **kw) if four else "",
        compiler.process(element.ip6, **kw) if six else "",
    )


def _version(raw: str, address: str, find: str = "INSTR") -> str:
    """The IP's version: its own when truthy, else its address's (NULL: no version).
    ``find``: the backend's position-of-substring function (no ``%``: MySQL's paramstyle)."""
    return (
        f"(CASE WHEN COALESCE({raw}, '') IN ('', '0', 'false', 'null') "
        f"THEN (CASE WHEN {find}({address}, ':') > 0 THEN '6' ELSE '4' END) "
        f"WHEN {raw} IN ('4', '6') THEN {raw} END)"
    )


def _test(address: str, version: str, match4: str, match6: str) -> str:
    """``match4``/``match6`` empty: that filter is not given."""
    tests = [f"({version} = '{v}' AND {match})" for v, match in (("4", match4), ("6", match6))]
    either = " OR ".join(t for t, m in zip(tests, (match4, match6), strict=True) if m)
    return f"COALESCE({address}, '') <> '' AND ({either})"


def _m(before: str, pattern: str, after: str = "") -> str:
    return f"{before}{pattern}{after}" if pattern else ""


@compiles(IpMatch)
def _ip_match_sqlite(element: IpMatch, compiler: SQLCompiler, **kw: object) -> str:
    uuid, ip, ip6 = _parts(element, compiler, **kw)
    address = "json_extract(ipf_i.value, '$.address')"
    raw = "CAST(json_extract(ipf_i.value, '$.version') AS TEXT)"
    # json_extract gives false as 0, a JSON null as NULL.
    test = _test(
        address, _version(raw, address), _m(f"{address} REGEXP ", ip), _m(f"{address} REGEXP ", ip6)
    )
    return (
        "EXISTS (SELECT 1 FROM instance_info_caches AS ipf_c, "
        "json_each(CASE WHEN json_valid(ipf_c.network_info) THEN ipf_c.network_info "
        "ELSE '[]' END) AS ipf_v, "
        "json_each(ipf_v.value, '$.network.subnets') AS ipf_s, "
        "json_each(ipf_s.value, '$.ips') AS ipf_i "
        f"WHERE ipf_c.instance_uuid = {uuid} AND ipf_v.type = 'object' "
        f"AND ipf_s.type = 'object' AND ipf_i.type = 'object' AND {test})"
    )


def _pg_array(value: str) -> str:
    return f"json_array_elements(CASE WHEN json_typeof({value}) = 'array' THEN {value} END)"


@compiles(IpMatch, "postgresql")
def _ip_match_pg(element: IpMatch, compiler: SQLCompiler, **kw: object) -> str:
    uuid, ip, ip6 = _parts(element, compiler, **kw)
    address = "(ipf_i.ip ->> 'address')"
    raw = "(ipf_i.ip ->> 'version')"
    cache = "(CASE WHEN left(ipf_c.network_info, 1) = '[' THEN ipf_c.network_info::json END)"
    test = _test(
        address, _version(raw, address, "strpos"), _m(f"{address} ~ ", ip), _m(f"{address} ~ ", ip6)
    )
    return (
        "EXISTS (SELECT 1 FROM instance_info_caches AS ipf_c "
        f"CROSS JOIN LATERAL {_pg_array(cache)} AS ipf_v(vif) "
        f"CROSS JOIN LATERAL {_pg_array(_pg_field('ipf_v.vif', 'network', 'subnets'))}"
        " AS ipf_s(subnet) "
        f"CROSS JOIN LATERAL {_pg_array(_pg_field('ipf_s.subnet', 'ips'))} AS ipf_i(ip) "
        f"WHERE ipf_c.instance_uuid = {uuid} AND json_typeof(ipf_i.ip) = 'object' AND {test})"
    )


def _pg_field(value: str, *keys: str) -> str:
    """``value -> key -> ...``, NULL where a step is not an object (no error)."""
    out = value
    for key in keys:
        out = f"(CASE WHEN json_typeof({out}) = 'object' THEN {out} -> '{key}' END)"
    return out


@compiles(IpMatch, "mysql")
def _ip_match_mysql(element: IpMatch, compiler: SQLCompiler, **kw: object) -> str:
    uuid, ip, ip6 = _parts(element, compiler, **kw)
    address = "ipf_i.address"
    raw = "ipf_i.version"
    binary = f"CAST({address} AS BINARY)"
    test = _test(
        address,
        _version(raw, address),
        _m(f"{binary} REGEXP CAST(", ip, " AS BINARY)"),
        _m(f"{binary} REGEXP CAST(", ip6, " AS BINARY)"),
    )
    return (
        "EXISTS (SELECT 1 FROM instance_info_caches AS ipf_c, JSON_TABLE("
        "CASE WHEN JSON_VALID(ipf_c.network_info) THEN ipf_c.network_info ELSE '[]' END, "
        "'$[*].network.subnets[*].ips[*]' COLUMNS ("
        "address VARCHAR(255) PATH '$.address' NULL ON ERROR, "
        "version VARCHAR(16) PATH '$.version' NULL ON ERROR)) AS ipf_i "
        f"WHERE ipf_c.instance_uuid = {uuid} AND {test})"
    )
