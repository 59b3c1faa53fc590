"""The chaos run's fault schedule: seeded, printed, repeatable (pure; no I/O).

A schedule is a list of :class:`Fault`: a kind, its targets, and when it starts and ends in
seconds from the start of the load. :func:`make_schedule` draws one from a seed: faults one
after another in a shuffled order of the kinds asked for, each lasting ``min_s``–``max_s``,
the next starting before the previous one ends ``overlap`` of the time, never on
a target that is still faulted, with at most ``max_cells_down`` cells out at once (never all
of them: a listing must have something to answer with). The same arguments give the same
schedule; :func:`describe` prints it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "CELL_KINDS",
    "Fault",
    "FaultKind",
    "describe",
    "make_schedule",
]

INSTANT_S = 10.0  # how long an instant fault (a worker killed) is watched for


class FaultKind(StrEnum):
    """What a fault does (``scripts/outage`` or a signal carries it out)."""

    CELL_STOP = "cell-stop"  # pg_ctl stop -m immediate, then start
    CELL_FREEZE = "cell-freeze"  # SIGSTOP the cell's server, then SIGCONT
    CELL_SLOW = "cell-slow"  # the proxy's delay at half the cell deadline
    CELL_CUT = "cell-cut"  # the proxy drops every connection, every couple of seconds
    TWO_CELLS_DOWN = "two-cells-down"
    REDIS_RESTART = "redis-restart"  # SIGKILL, then started again
    REDIS_FREEZE = "redis-freeze"
    APIDB_RESTART = "apidb-restart"
    WORKER_KILL = "worker-kill"  # SIGKILL of one gateway worker (instant)


CELL_KINDS = frozenset(
    {
        FaultKind.CELL_STOP,
        FaultKind.CELL_FREEZE,
        FaultKind.CELL_SLOW,
        FaultKind.CELL_CUT,
        FaultKind.TWO_CELLS_DOWN,
    }
)
# Faults that take cells out of listings (slow and cut ones should not, but may).
_CELL_TARGETS = {FaultKind.TWO_CELLS_DOWN: 2}
_SHARED_TARGET = {
    FaultKind.REDIS_RESTART: "redis",
    FaultKind.REDIS_FREEZE: "redis",
    FaultKind.APIDB_RESTART: "apidb",
    FaultKind.WORKER_KILL: "worker",
}


@dataclass(frozen=True)
class Fault:
    """One fault: ``kind`` on ``targets`` (cell names, ``redis``, ``apidb``, ``worker``)
    from ``start_s`` to ``end_s`` (seconds from the start of the load)."""

    kind: FaultKind
    targets: tuple[str, ...]
    start_s: float
    end_s: float

    @property
    def instant(self) -> bool:
        return self.kind is FaultKind.WORKER_KILL

    @property
    def cells(self) -> tuple[str, ...]:
        return self.targets if self.kind in CELL_KINDS else ()

    def active(self, t_s: float) -> bool:
        return self.start_s <= t_s < self.end_s


def _free_cells(cells: Sequence[str], busy: Sequence[Fault], at_s: float) -> list[str]:
    taken = {c for f in busy if f.end_s > at_s for c in f.cells}
    return [c for c in cells if c not in taken]


def make_schedule(
    seed: int,
    kinds: Sequence[FaultKind],
    cells: Sequence[str],
    start_s: float,
    end_s: float,
    min_s: float = 10.0,
    max_s: float = 40.0,
    max_cells_down: int = 3,
    overlap: float = 1 / 3,
) -> list[Fault]:
    """Faults of every kind in ``kinds`` (repeated while time remains) between ``start_s``
    and ``end_s``, drawn from ``seed`` (see the module's docstring)."""
    if len(cells) < 3:
        raise ValueError("a chaos schedule needs at least 3 cells")
    rng = random.Random(seed)
    order = list(kinds)
    rng.shuffle(order)
    faults: list[Fault] = []
    t = start_s
    i = 0
    while order:
        kind = order[i % len(order)]
        i += 1
        length = INSTANT_S if kind is FaultKind.WORKER_KILL else rng.uniform(min_s, max_s)
        if t + length > end_s:
            if i >= len(order):
                break
            continue
        busy = [f for f in faults if f.end_s > t]
        if kind in CELL_KINDS:
            free = _free_cells(cells, busy, t)
            down = sum(len(f.cells) for f in busy)
            wanted = _CELL_TARGETS.get(kind, 1)
            if len(free) < wanted or down + wanted > min(max_cells_down, len(cells) - 1):
                t = min(f.end_s for f in busy) + 1.0
                continue
            targets = tuple(sorted(rng.sample(free, wanted), key=lambda c: (len(c), c)))
        else:
            target = _SHARED_TARGET[kind]
            if any(target in f.targets for f in busy):
                t = min(f.end_s for f in busy if target in f.targets) + 1.0
                continue
            targets = (target,)
        faults.append(Fault(kind, targets, round(t, 1), round(t + length, 1)))
        # Overlap (``overlap`` of the time); otherwise a quiet gap, where recovery shows.
        if rng.random() < overlap:
            t += length * rng.uniform(0.3, 0.7)
        else:
            t += length + rng.uniform(0.8 * min_s, 1.5 * min_s)
    return faults


def describe(faults: Sequence[Fault]) -> str:
    """One line per fault, as the run prints and the report shows it."""
    return "\n".join(
        f"{f.start_s:7.1f} → {f.end_s:7.1f} s  {f.kind.value:<15} {','.join(f.targets)}"
        for f in faults
    )
