"""The API database's client: Nova's ``nova_api`` tables, read-only, under a deadline.

One :class:`ApiDatabase` per gateway, built by the lifespan with its driver's executor
(:func:`cells.registry.executor_for`), as each cell's :class:`~cells.client.CellClient`.
Every lookup runs under ``timeout_s`` (the instance counts, an aggregate the callers cache
and may refresh in the background, under ``count_timeout_s``) on a connection of its own;
anything that keeps it from answering — an error, the deadline, a table that is not there
— raises :class:`~cells.errors.ApiDatabaseUnavailable` (a 503 upstream). The down-cell stubs
(:meth:`stubs`) are a merge input instead, so they return a typed outcome like a cell.

Over the house size on purpose: one client for one database, each lookup a short method
under the same deadline and error rule.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Hashable, Mapping, Sequence

from sqlalchemy import String, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine

from cells.errors import ApiDatabaseUnavailable, CellMisconfigured, CellsError
from cells.executor import Executor, Query
from cells.fanout import CellFailed, CellOutcome, CellRows, CellSkipped, CellSlow, CellTimedOut
from cells.order import Row, SortSpec, SqlValue
from cells.registry import Cell, EngineOptions, InstanceMapping, open_executor
from cells.schema import (
    aggregate_hosts,
    aggregate_metadata,
    cell_mappings,
    flavors,
    instance_group_member,
    instance_groups,
    instance_mappings,
    request_specs,
)
from cells.session import CellSession
from cells.stubs import StubRow, stub_statement
from cells.urls import format_db_url

__all__ = ["ApiDatabase"]

log = logging.getLogger(__name__)

_LABEL = "API database"
_DISPOSE_S = 2.0


class ApiDatabase:
    """Read-only lookups on the API database, each within ``timeout_s``.

    ``database_connection`` is ``[database] connection`` of ``nova.conf``: it fills the
    templated ``cell_mappings`` URLs (:func:`~cells.urls.format_db_url`).
    """

    def __init__(
        self,
        executor: Executor,
        timeout_s: float = 5.0,
        count_timeout_s: float | None = None,
        database_connection: str | None = None,
    ) -> None:
        self._executor = executor
        self.timeout_s = timeout_s
        self.count_timeout_s = timeout_s if count_timeout_s is None else count_timeout_s
        self.database_connection = database_connection

    @classmethod
    def connect(
        cls,
        url: str,
        options: EngineOptions,
        timeout_s: float,
        count_timeout_s: float | None = None,
        database_connection: str | None = None,
    ) -> ApiDatabase:
        """A client for the API database at ``url`` (no I/O until the first call)."""
        executor = open_executor(url, options, _LABEL)
        return cls(executor, timeout_s, count_timeout_s, database_connection)

    @property
    def engine(self) -> AsyncEngine:
        """The pool, for tools that read the database themselves (benchmarks, checks)."""
        return self._executor.engine

    def session(self, timeout_s: float | None = None) -> CellSession:
        """A request's calls on one connection (the stubs of one page), each within
        ``timeout_s`` (default: the lookups' deadline)."""
        return CellSession(_LABEL, self._executor, timeout_s or self.timeout_s)

    async def load_cells(self) -> list[Cell]:
        """All cell mappings, ordered by id, their URL templates filled."""
        rows = await self._rows(("cells",), _cells)
        return [
            Cell(
                id=_int(r["id"]),
                uuid=str(r["uuid"]),
                name=str(r["name"] or ""),
                url=format_db_url(
                    str(r["database_connection"] or ""),
                    self.database_connection,
                    f"cell {r['uuid']}",
                ),
                disabled=bool(r["disabled"]),
            )
            for r in rows
        ]

    async def mapping(self, instance_uuid: str) -> InstanceMapping | None:
        """The mapping of one instance, or ``None`` (a marker page's first round trip)."""
        rows = await self._rows(("mapping",), _mapping, {"uuid": instance_uuid})
        if not rows:
            return None
        r = rows[0]
        return InstanceMapping(
            str(r["instance_uuid"]),
            r["cell_id"] if isinstance(r["cell_id"], int) else None,
            str(r["project_id"]),
            None if r["user_id"] is None else str(r["user_id"]),
            r["created_at"] if isinstance(r["created_at"], dt.datetime) else None,
            bool(r["queued_for_delete"]),
        )

    async def cell_counts(self, project_id: str | None) -> dict[int, int]:
        """Mapped instances per cell, for one project or all (cells with none are absent).

        An index-only count on ``(project_id, cell_id)`` (or ``(cell_id, ...)`` for all
        projects); the callers cache it.
        """
        scoped = project_id is not None
        values = {"project": project_id} if scoped else {}
        rows = await self._rows(
            ("counts", scoped), lambda: _counts(scoped), values, self.count_timeout_s
        )
        return {_int(r["cell_id"]): _int(r["n"]) for r in rows}

    async def flavor_ids(self, flavorid: str) -> frozenset[int]:
        """Internal ids of the flavor with public ``flavorid`` (empty when unknown)."""
        rows = await self._rows(("flavors",), _flavors, {"flavorid": flavorid})
        return frozenset(_int(r["id"]) for r in rows)

    async def request_spec(self, instance_uuid: str) -> str | None:
        """The serialized request spec of an instance, if any is left."""
        rows = await self._rows(("spec",), _spec, {"uuid": instance_uuid})
        document = rows[0]["spec"] if rows else None
        return None if document is None else str(document)

    async def request_specs(self, instance_uuids: Sequence[str]) -> dict[str, str]:
        """The serialized request specs of ``instance_uuids`` (those that have one), as
        Nova's ``RequestSpec.get_by_instance_uuids``: one query per 500 uuids."""
        out: dict[str, str] = {}
        array = self._executor.binds_arrays
        for start in range(0, len(instance_uuids), 500):
            chunk = list(instance_uuids[start : start + 500])
            rows = await self._rows(("specs", array), lambda: _specs(array), {"uuids": chunk})
            out.update(
                (str(r["instance_uuid"]), str(r["spec"])) for r in rows if r["spec"] is not None
            )
        return out

    async def host_zones(self, hosts: Sequence[str]) -> dict[str, str]:
        """The availability zone of each of ``hosts`` that is in an aggregate with one, as
        Nova's ``get_host_availability_zone``: the first such aggregate's (lowest id)."""
        out: dict[str, str] = {}
        array = self._executor.binds_arrays
        for start in range(0, len(hosts), 500):
            chunk = list(hosts[start : start + 500])
            rows = await self._rows(("zones", array), lambda: _zones(array), {"hosts": chunk})
            for r in rows:
                out.setdefault(str(r["host"]), str(r["value"]))
        return out

    async def server_group(self, instance_uuid: str, project_id: str | None) -> str | None:
        """The uuid of the server group the instance belongs to (at most one), as Nova's
        ``InstanceGroup.get_by_instance_uuid``: its first membership's group, looked up with
        the caller's context, so ``project_id`` (a caller who is not an admin) must own it."""
        scoped = project_id is not None
        values = {"uuid": instance_uuid, **({"project": project_id} if scoped else {})}
        rows = await self._rows(("group", scoped), lambda: _group(scoped), values)
        return None if not rows or rows[0]["uuid"] is None else str(rows[0]["uuid"])

    async def server_groups(self, uuids: Sequence[str], project_id: str | None) -> frozenset[str]:
        """Which of ``uuids`` name a server group Nova's ``InstanceGroup.get_by_uuid`` finds
        with the caller's context: one that exists and, for a caller who is not an admin
        (``project_id`` given), belongs to that project."""
        scoped, array = project_id is not None, self._executor.binds_arrays
        found: set[str] = set()
        for start in range(0, len(uuids), 500):
            values: dict[str, object] = {"uuids": list(uuids[start : start + 500])}
            if scoped:
                values["project"] = project_id
            rows = await self._rows(
                ("groups", scoped, array), lambda: _groups(scoped, array), values
            )
            found.update(str(r["uuid"]) for r in rows)
        return frozenset(found)

    async def stubs(
        self,
        session: CellSession,
        spec: SortSpec,
        cell_id: int,
        project_id: str | None,
        position: tuple[SqlValue, ...] | None,
        n: int,
    ) -> CellOutcome:
        """Up to ``n`` stubs of ``cell_id``'s instances after ``position`` (2.69+:
        :mod:`cells.stubs`), as a merge input: an outcome, under the deadline and probe."""
        statement = stub_statement(spec, cell_id, project_id, position, n)
        outcome = await session.fetch(session.prepare(statement), {}, limit=n)
        if isinstance(outcome, CellRows):
            return dataclasses.replace(outcome, rows=[StubRow(row) for row in outcome.rows])
        return outcome

    async def probe(self) -> CellOutcome:
        """``SELECT 1`` within the deadline (readiness), as an outcome."""
        session = self.session()
        try:
            return await session.ping()
        finally:
            await session.close()

    async def ping(self) -> None:
        """Raise :class:`ApiDatabaseUnavailable` unless a trivial query answers."""
        outcome = await self.probe()
        if not isinstance(outcome, CellRows):
            raise ApiDatabaseUnavailable(_why(outcome))

    async def dispose(self) -> None:
        """Close the pool, giving up on a frozen server's connections after 2 s."""
        try:
            async with asyncio.timeout(_DISPOSE_S):
                await self._executor.dispose()
        except TimeoutError:
            log.warning("gave up disposing the API database's engine after 2 s")

    async def _rows(
        self,
        key: Hashable,
        build: Callable[[], Query],
        values: Mapping[str, object] | None = None,
        timeout_s: float | None = None,
    ) -> list[Row]:
        session = self.session(timeout_s)
        try:
            prepared = self._executor.prepare(key, build)
            outcome = await session.fetch(prepared, values or {}, limit=0, probe=False)
        except CellMisconfigured as exc:  # a schema fault here is the API database's failure
            raise ApiDatabaseUnavailable(exc.message) from exc
        except CellsError as exc:
            raise ApiDatabaseUnavailable(str(exc)) from exc
        finally:
            await session.close()
        if not isinstance(outcome, CellRows):
            raise ApiDatabaseUnavailable(_why(outcome))
        return outcome.rows


def _cells() -> Query:
    c = cell_mappings.c
    return select(c.id, c.uuid, c.name, c.database_connection, c.disabled).order_by(c.id)


def _mapping() -> Query:
    c = instance_mappings.c
    return select(
        c.instance_uuid, c.cell_id, c.project_id, c.user_id, c.created_at, c.queued_for_delete
    ).where(c.instance_uuid == bindparam("uuid"))


def _counts(scoped: bool) -> Query:
    c = instance_mappings.c
    query = select(c.cell_id, func.count().label("n")).where(c.cell_id.is_not(None))
    if scoped:
        query = query.where(c.project_id == bindparam("project"))
    return query.group_by(c.cell_id)


def _flavors() -> Query:
    return select(flavors.c.id).where(flavors.c.flavorid == bindparam("flavorid"))


def _spec() -> Query:
    spec = request_specs.c
    return select(spec.spec).where(spec.instance_uuid == bindparam("uuid"))


def _specs(array: bool) -> Query:
    spec = request_specs.c
    if array:  # one array parameter (asyncpg), not one per uuid
        member = spec.instance_uuid == any_(bindparam("uuids", type_=ARRAY(String)))
    else:
        member = spec.instance_uuid.in_(bindparam("uuids", expanding=True, type_=String))
    return select(spec.instance_uuid, spec.spec).where(member)


def _zones(array: bool) -> Query:
    ah, am = aggregate_hosts.c, aggregate_metadata.c
    if array:
        member = ah.host == any_(bindparam("hosts", type_=ARRAY(String)))
    else:
        member = ah.host.in_(bindparam("hosts", expanding=True, type_=String))
    return (
        select(ah.host, am.value)
        .join_from(aggregate_hosts, aggregate_metadata, am.aggregate_id == ah.aggregate_id)
        .where(member, am.key == "availability_zone")
        .order_by(ah.aggregate_id)
    )


def _group(scoped: bool) -> Query:
    member, group = instance_group_member.c, instance_groups.c
    first = (
        select(member.group_id)
        .where(member.instance_uuid == bindparam("uuid"))
        .order_by(member.id)
        .limit(1)
        .scalar_subquery()
    )
    query = select(group.uuid).where(group.id == first)
    if scoped:  # Nova's _instance_group_get_query for a context that is not an admin
        query = query.where(group.project_id == bindparam("project"))
    return query


def _groups(scoped: bool, array: bool) -> Query:
    group = instance_groups.c
    if array:
        member = group.uuid == any_(bindparam("uuids", type_=ARRAY(String)))
    else:
        member = group.uuid.in_(bindparam("uuids", expanding=True, type_=String))
    query = select(group.uuid).where(member)
    if scoped:
        query = query.where(group.project_id == bindparam("project"))
    return query


def _why(outcome: CellOutcome) -> str:
    match outcome:
        case CellFailed(error=error):
            return error
        case CellTimedOut(timeout_s=timeout_s) | CellSlow(timeout_s=timeout_s):
            return f"no answer within {timeout_s:g} s"
        case CellRows() | CellSkipped():
            pass
    return type(outcome).__name__


def _int(value: SqlValue) -> int:
    assert isinstance(value, int)
    return value
