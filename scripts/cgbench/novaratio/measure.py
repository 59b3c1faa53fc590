"""Requests alternating between nova-api and cellgate, one at a time, each server on one
keep-alive connection (:class:`~cgbench.httpconn.HttpConn`): first pages and marker walks.

Each round asks both servers the same request; which one goes first alternates from round
to round, so neither always follows the other's load. A connection the server closed while
idle (gunicorn's keep-alive is 2 s) is reopened and the request sent again; only that
attempt is timed.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

import orjson

from cgbench.httpconn import HttpConn
from cgbench.novaratio.figures import TIMEOUT, Figure, Group, Side
from cgbench.results import Latency

__all__ = ["ADMIN", "MEMBER", "Bench", "Caller", "Endpoint", "View", "listing", "target"]

View = Literal["summary", "detail"]
Name = Literal["nova-api", "cellgate"]
TOKEN = "novabench"
"""Sent as ``X-Auth-Token``: Nova's detail view forwards it to Neutron (which ignores it)."""


@dataclass(frozen=True)
class Caller:
    """Who asks, as the headers Nova's keystonecontext and cellgate's trusted-headers read."""

    label: str
    project: str
    roles: str
    all_tenants: bool

    def headers(self, microversion: str) -> dict[str, str]:
        return {
            "X-User-Id": f"novabench-{self.project}",
            "X-Project-Id": self.project,
            "X-Roles": self.roles,
            "OpenStack-API-Version": f"compute {microversion}",
        }


ADMIN = Caller("admin, all tenants", "admin", "admin,member,reader", True)
MEMBER = Caller("member of one project", "demo", "member,reader", False)


def target(view: View, caller: Caller, limit: int) -> str:
    """The first page's path and query."""
    path = "/v2.1/servers/detail" if view == "detail" else "/v2.1/servers"
    return f"{path}?limit={limit}" + ("&all_tenants=1" if caller.all_tenants else "")


@dataclass(frozen=True)
class Endpoint:
    name: Name
    port: int


@dataclass(frozen=True)
class Answer:
    status: int
    seconds: float
    ids: tuple[str, ...] = ()
    next: str | None = None
    unavailable: str = ""


def listing(body: bytes) -> tuple[tuple[str, ...], str | None]:
    """The ids of a listing's servers and its next link's path and query."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return (), None
    if not isinstance(doc, dict) or not isinstance(doc.get("servers"), list):
        return (), None
    ids = tuple(str(s.get("id")) for s in doc["servers"])
    for link in doc.get("servers_links") or ():
        if link.get("rel") == "next":
            parts = urlsplit(str(link["href"]))
            return ids, f"{parts.path}?{parts.query}"
    return ids, None


async def ask(conn: HttpConn, path: str, headers: Mapping[str, str]) -> Answer:
    """One request; a stale keep-alive connection is reopened once."""
    for attempt in (1, 2):
        started = time.perf_counter()
        try:
            status, got, body = await conn.get(path, TOKEN, headers)
        except (asyncio.IncompleteReadError, ConnectionError):
            conn.close()
            if attempt == 2:
                raise
            continue
        except TimeoutError:
            conn.close()
            return Answer(TIMEOUT, time.perf_counter() - started)
        took = time.perf_counter() - started
        ids, next_link = listing(body)
        return Answer(status, took, ids, next_link, got.get("x-cells-unavailable", ""))
    raise AssertionError("unreachable")


@dataclass
class _Tally:
    """One server's answers to one figure, summarised into a :class:`Side`."""

    seconds: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    ids: tuple[str, ...] = ()
    unavailable: str = ""

    def side(self) -> Side:
        latency = Latency.of(self.seconds)
        return Side(latency, dict(self.statuses), len(self.ids), self.unavailable)


def _same(tallies: Mapping[Name, _Tally]) -> bool | None:
    nova, ours = tallies["nova-api"], tallies["cellgate"]
    if set(nova.statuses) != {200} or set(ours.statuses) != {200}:
        return None
    return nova.ids == ours.ids


class Bench:
    """Both servers, one keep-alive connection each, for the whole run."""

    def __init__(
        self, endpoints: Sequence[Endpoint], microversion: str, budget_s: float = 180.0
    ) -> None:
        self.endpoints = tuple(endpoints)
        self.microversion = microversion
        self.budget_s = budget_s
        self.conns = {e.name: HttpConn("127.0.0.1", e.port) for e in self.endpoints}

    def close(self) -> None:
        for conn in self.conns.values():
            conn.close()

    def _order(self, round_: int) -> Sequence[Endpoint]:
        return self.endpoints if round_ % 2 == 0 else self.endpoints[::-1]

    async def warm(self, paths: Sequence[tuple[str, Caller]], rounds: int, extra: int) -> None:
        """``rounds`` of every path on the measuring connections, while ``extra`` more
        connections per server do the same (so every worker process has served them)."""

        async def on(conn: HttpConn) -> None:
            for _ in range(rounds):
                for path, caller in paths:
                    await ask(conn, path, caller.headers(self.microversion))

        more = [HttpConn("127.0.0.1", e.port) for e in self.endpoints for _ in range(extra)]
        try:
            await asyncio.gather(*(on(c) for c in [*self.conns.values(), *more]))
        finally:
            for conn in more:
                conn.close()

    async def compare(
        self, group: Group, label: str, path: str, caller: Caller, samples: int
    ) -> Figure:
        """``samples`` rounds of ``path`` as ``caller``; fewer (three at least) once the
        figure has taken :attr:`budget_s` (a server waiting out a down cell)."""
        tallies = {e.name: _Tally() for e in self.endpoints}
        headers = caller.headers(self.microversion)
        started = time.perf_counter()
        for round_ in range(samples):
            if round_ >= 3 and time.perf_counter() - started > self.budget_s:
                break
            for endpoint in self._order(round_):
                answer = await ask(self.conns[endpoint.name], path, headers)
                tally = tallies[endpoint.name]
                tally.seconds.append(answer.seconds)
                tally.statuses[answer.status] += 1
                tally.ids, tally.unavailable = answer.ids, answer.unavailable
        sides = {name: t.side() for name, t in tallies.items()}
        return Figure(group, label, sides["nova-api"], sides["cellgate"], _same(tallies))

    async def _walk(self, conn: HttpConn, first: str, caller: Caller, pages: int) -> _Tally:
        """One walk of up to ``pages`` pages from ``first``, following the next links:
        its total time as one sample."""
        headers = caller.headers(self.microversion)
        tally, total = _Tally(), 0.0
        ids: list[str] = []
        path: str | None = first
        while path is not None and sum(tally.statuses.values()) < pages:
            answer = await ask(conn, path, headers)
            total += answer.seconds
            tally.statuses[answer.status] += 1
            ids += answer.ids
            path = answer.next if answer.status == 200 else None
        tally.seconds.append(total)
        tally.ids = tuple(ids)
        return tally

    async def walks(self, label: str, first: str, caller: Caller, pages: int, walks: int) -> Figure:
        """``walks`` rounds of one walk per server; the samples are whole walks."""
        tallies = {e.name: _Tally() for e in self.endpoints}
        for round_ in range(walks):
            for endpoint in self._order(round_):
                one = await self._walk(self.conns[endpoint.name], first, caller, pages)
                tally = tallies[endpoint.name]
                tally.seconds += one.seconds
                tally.statuses.update(one.statuses)
                tally.ids = one.ids
        sides = {name: t.side() for name, t in tallies.items()}
        return Figure("walk", label, sides["nova-api"], sides["cellgate"], _same(tallies))
