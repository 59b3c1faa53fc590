"""Ask the real nova-api and cellgate the same question and say how the answers differ.

A :class:`Probe` is one request (path, query, caller, microversion). :func:`ask` sends it
to both servers, which read the same databases and build links on the same base URL (the
gateway's ``public_base_url`` is nova-api's address), so bodies compare as they are. The
differences come back as :class:`Diff` rows, which :mod:`tests.support.known` explains or
not:

- a different status is one diff at ``status`` (bodies then are not compared further);
- listings compare their id sequences first (one diff at ``ids``), then, when the ids
  agree, every server's fields (``servers[3].progress``), and the ``next`` links as paths
  with their query as a multiset (Nova sorts its parameters by name);
- ``show`` compares the server's fields; errors compare their bodies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

import httpx

__all__ = ["ADMIN", "MEMBER", "Answer", "Caller", "Diff", "Probe", "ask", "diff_answers"]


@dataclass(frozen=True)
class Caller:
    """Who asks: the headers Nova's keystonecontext and cellgate's trusted-headers read."""

    role: str  # its name in labels and X-User-Id: admin, member, auditor...
    project: str
    roles: str

    def headers(self) -> dict[str, str]:
        return {
            "X-Auth-Token": f"parity-{self.role}",
            "X-User-Id": f"parity-{self.role}",
            "X-Project-Id": self.project,
            "X-Roles": self.roles,
        }


ADMIN = Caller("admin", "admin", "admin,member,reader")
MEMBER = Caller("member", "demo", "member,reader")


@dataclass(frozen=True)
class Probe:
    """One request: ``path`` below ``/v2.1`` (``servers``, ``servers/detail``, ``servers/ID``)."""

    path: str
    params: tuple[tuple[str, str], ...] = ()
    caller: Caller = ADMIN
    version: str = "2.1"
    setting: str = ""  # what is special about the databases asked ("" for nothing)

    def label(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.params)
        return f"{self.caller.role} {self.version} /{self.path}?{query}"

    def with_params(self, *extra: tuple[str, str]) -> Probe:
        params = (*self.params, *extra)
        return Probe(self.path, params, self.caller, self.version, self.setting)


@dataclass(frozen=True)
class Answer:
    """A server's answer: status and JSON body (``None`` when not JSON)."""

    status: int
    body: object
    unavailable: str | None = None  # cellgate's X-Cells-Unavailable

    @property
    def servers(self) -> list[Mapping[str, object]]:
        if isinstance(self.body, dict) and isinstance(self.body.get("servers"), list):
            return self.body["servers"]
        return []

    @property
    def ids(self) -> list[str]:
        return [str(s.get("id")) for s in self.servers]

    @property
    def next_href(self) -> str | None:
        if not isinstance(self.body, dict):
            return None
        for link in self.body.get("servers_links") or ():
            if link.get("rel") == "next":
                return str(link["href"])
        return None


@dataclass(frozen=True)
class Diff:
    """One difference: where, and each side's value."""

    where: str
    nova: object
    cellgate: object

    def __str__(self) -> str:
        return f"{self.where}: nova={self.nova!r:.200} cellgate={self.cellgate!r:.200}"


@dataclass
class Pair:
    """Both answers to a probe, and their differences."""

    probe: Probe
    nova: Answer
    cellgate: Answer
    diffs: list[Diff] = field(default_factory=list)


async def _get(client: httpx.AsyncClient, probe: Probe) -> Answer:
    headers = {**probe.caller.headers(), "OpenStack-API-Version": f"compute {probe.version}"}
    response = await client.get(f"/v2.1/{probe.path}", params=list(probe.params), headers=headers)
    try:
        body: object = response.json()
    except ValueError:
        body = None
    return Answer(response.status_code, body, response.headers.get("X-Cells-Unavailable"))


async def ask(nova: httpx.AsyncClient, cellgate: httpx.AsyncClient, probe: Probe) -> Pair:
    """Send ``probe`` to both servers and compare the answers."""
    answers = await asyncio.gather(_get(nova, probe), _get(cellgate, probe))
    pair = Pair(probe, *answers)
    pair.diffs = diff_answers(pair.nova, pair.cellgate)
    return pair


def _link_key(href: str | None) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    if href is None:
        return None
    parts = urlsplit(href)
    return parts.path, tuple(sorted(parse_qsl(parts.query, keep_blank_values=True)))


def _diff_server(where: str, nova: Mapping[str, object], ours: Mapping[str, object]) -> list[Diff]:
    missing = object()
    diffs = []
    for key in sorted(set(nova) | set(ours)):
        a, b = nova.get(key, missing), ours.get(key, missing)
        if a != b:
            diffs.append(
                Diff(
                    f"{where}.{key}",
                    "<absent>" if a is missing else a,
                    "<absent>" if b is missing else b,
                )
            )
    return diffs


def diff_answers(nova: Answer, ours: Answer) -> list[Diff]:
    """The differences between Nova's answer and cellgate's (see the module docstring)."""
    if nova.status != ours.status:
        return [Diff("status", nova.status, ours.status)]
    if nova.status != 200:
        return [] if nova.body == ours.body else [Diff("error", nova.body, ours.body)]
    if isinstance(nova.body, dict) and "server" in nova.body and isinstance(ours.body, dict):
        return _diff_server("server", nova.body["server"], ours.body.get("server") or {})
    if nova.ids != ours.ids:
        return [Diff("ids", nova.ids, ours.ids)]
    diffs: list[Diff] = []
    for i, (a, b) in enumerate(zip(nova.servers, ours.servers, strict=True)):
        diffs.extend(_diff_server(f"servers[{i}]", a, b))
    if _link_key(nova.next_href) != _link_key(ours.next_href):
        diffs.append(Diff("next", nova.next_href, ours.next_href))
    return diffs


def fields_of(diffs: Sequence[Diff]) -> set[str]:
    """The field names of per-server diffs (``servers[3].progress`` -> ``progress``)."""
    return {d.where.rpartition(".")[2] for d in diffs if "." in d.where}
