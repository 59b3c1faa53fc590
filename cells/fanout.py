"""Typed outcomes of a cell call, and the task group that runs one request's cell calls.

A cell call (:class:`~cells.client.CellClient`) returns :class:`CellRows`,
:class:`CellFailed`, :class:`CellTimedOut`, :class:`CellSlow` or :class:`CellSkipped` — or,
for detail reads and show, :class:`CellDetails` and :class:`CellServer` — and the caller
``match``es on them. A cell that cannot answer is an outcome, never an error; what is an
error (the client's query) is a :class:`~cells.errors.CellsError`; a misconfigured cell is a
:class:`CellFailed` with a ``schema_fault``.
The deadline and probe that decide between them live in :mod:`cells.session`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from cells.details import Details
from cells.errors import CellMisconfigured, InvalidQuery
from cells.order import Row

__all__ = [
    "CellDetails",
    "CellFailed",
    "CellOutcome",
    "CellRows",
    "CellServer",
    "CellSkipped",
    "CellSlow",
    "CellTimedOut",
    "DetailsOutcome",
    "DownOutcome",
    "ServerOutcome",
    "down_name",
    "first_error",
    "run_all",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CellRows:
    """A batch of rows; ``exhausted`` when the cell returned fewer than asked."""

    rows: list[Row]
    exhausted: bool
    elapsed_ms: float


@dataclass(frozen=True, slots=True)
class CellFailed:
    """The cell answered with an error of its own, or could not be reached; or its schema
    or grants do not match what cellgate reads: then ``schema_fault`` says why (one of
    :data:`~cells.faults.SCHEMA_REASONS`), and the breaker is left alone (a misconfigured
    cell answers at once, and is served again as soon as it is repaired)."""

    error: str
    elapsed_ms: float
    schema_fault: str | None = None


@dataclass(frozen=True, slots=True)
class CellTimedOut:
    """The cell did not answer within its deadline, nor did it answer a probe."""

    timeout_s: float
    elapsed_ms: float


@dataclass(frozen=True, slots=True)
class CellSlow:
    """This query missed the deadline but the cell answered a probe: the query was slow."""

    timeout_s: float
    elapsed_ms: float


@dataclass(frozen=True, slots=True)
class CellSkipped:
    """Not asked: the cell's circuit breaker is open."""

    elapsed_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class CellDetails:
    """Side data per instance uuid (the uuids asked for that have none are absent)."""

    details: dict[str, Details]
    elapsed_ms: float


@dataclass(frozen=True, slots=True)
class CellServer:
    """One instance's row and side data; ``row`` is ``None`` when the cell has no visible
    row with that uuid (soft-deleted, or another project's)."""

    row: Row | None
    details: Details = field(default_factory=Details)
    elapsed_ms: float = 0.0


DownOutcome = CellFailed | CellTimedOut | CellSlow | CellSkipped
"""The outcomes of a cell that did not answer."""


def down_name(outcome: DownOutcome) -> str:
    """The ``outcome`` label of a cell that did not answer (metrics, logs, ``CellStats``):
    misconfigured (a schema fault), error, timeout, slow or skipped (breaker open)."""
    match outcome:
        case CellFailed(schema_fault=str()):
            return "misconfigured"
        case CellFailed():
            return "error"
        case CellTimedOut():
            return "timeout"
        case CellSlow():
            return "slow"
        case CellSkipped():
            return "skipped"


CellOutcome = CellRows | DownOutcome
"""A batch of rows, or no answer."""
DetailsOutcome = CellDetails | DownOutcome
"""A detail read's side data, or no answer."""
ServerOutcome = CellServer | DownOutcome
"""Show's row and side data, or no answer."""


async def run_all(calls: Sequence[Awaitable[T]]) -> list[T]:
    """Await ``calls`` concurrently in a task group: when one raises, the others are
    cancelled (and so drop their connections) before the first error propagates, unwrapped
    from its exception group."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_as_coroutine(call)) for call in calls]
    except BaseExceptionGroup as failed:
        raise first_error(failed) from None
    return [task.result() for task in tasks]


async def _as_coroutine(call: Awaitable[T]) -> T:
    return await call


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to report from a task group's failures, unwrapped (the error handlers
    know the errors, not a group of them): a configuration error beats a client error
    beats the rest."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop()
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(reversed(exc.exceptions))
        else:
            leaves.append(exc)
    for kind in (CellMisconfigured, InvalidQuery):
        for exc in leaves:
            if isinstance(exc, kind):
                return exc
    return leaves[0]
