"""The walk checks of a chaos run with writes (pure: no I/O).

With ``--writes`` the cells change during the run, so one fixed oracle no longer says what
a walk must show. The rule is the churn tests' (``tests/integration/test_nova_tables.py``,
``test_walks_under_concurrent_inserts_and_soft_deletes``), per walk:

* a row live for the whole walk (*stable*) appears exactly once, in order; missing from a
  page that did not name its cell, it is a gap;
* a row inserted or deleted during the walk (*changed*) may appear or not, never twice;
* a row that was never live during the run must not appear (*unknown*); one deleted before
  the walk began (or inserted after it) is counted apart (*stale*);
* every row listed, whatever its state, is in its place: sort keys never change.

:func:`history` builds each row's story from the oracle read before the load, the cells'
final state and the writer's log. A write's change happened somewhere between when it was
sent and when it answered; a write that failed (its cell stopped or frozen) but whose
change is in the final state happened at an unknown time after it was sent. A walk's own
window opens :data:`SLACK_S` early, since a page may come from what the gateway read a
little before: its page cache (2 s), per-project cell counts (5 s) and frontiers, trusted
for ``frontier_fresh_s`` (5 s) after their rows were read.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cgbench.chaoscheck import (
    History,
    Oracle,
    Page,
    Row,
    WalkCheck,
    check_history_walk,
    in_listing_order,
)
from cgbench.chaoswrites import Write

__all__ = ["SLACK_S", "History", "Tally", "check_churn_walk", "history"]

# The longest of those bounds (the gateway's defaults, which scripts/chaos keeps), plus 1 s.
SLACK_S = 6.0


@dataclass(frozen=True)
class Tally:
    """What became of the writes, as the cells' final state tells it."""

    attempted: int
    inserts: int  # committed (answered)
    deletes: int
    skipped: int  # failed (cell or API database down or frozen) and not applied
    skipped_by_error: dict[str, int]
    # Failed, yet applied: a frozen server's COMMIT run after its thaw, or a soft-delete
    # whose cell committed but whose mapping update failed (the API database down).
    applied_late: int
    orphan_mappings: int  # an insert's mapping row whose instance never came
    unexplained: int  # rows whose final state no write explains (goal 0)


def history(
    oracle: Oracle, final: Mapping[str, tuple[Row, bool]], writes: Sequence[Write]
) -> tuple[History, Tally]:
    """The run's :class:`History` from the oracle read before the load, the final state
    (uuid → (row, live)) and every write attempted."""
    live0 = frozenset(r.uuid for r in oracle.rows)
    changes: dict[str, list[tuple[float, float]]] = {}
    inserted: set[str] = set()
    skipped: Counter[str] = Counter()
    late = orphans = 0
    for w in writes:
        got = final.get(w.uuid)
        applied = got is not None if w.kind == "insert" else got is not None and not got[1]
        if w.error is not None and not applied:
            skipped[w.error.split(":", 1)[0]] += 1
            orphans += w.kind == "insert" and w.mapping_written
            continue
        late += w.error is not None
        changes.setdefault(w.uuid, []).append((w.start_s, w.end_s if w.error is None else math.inf))
        if w.kind == "insert":
            inserted.add(w.uuid)
    expected_live = {u for u in live0 | inserted if len(changes.get(u, ())) % 2 == (u in inserted)}
    ever = live0 | inserted
    unexplained = sum(
        1
        for u, (_, live) in final.items()
        if (u in ever and live != (u in expected_live)) or (u not in ever and live)
    ) + sum(1 for u in ever if u not in final)
    rows = in_listing_order([final[u][0] for u in ever if u in final])
    cell_of = {w.uuid: w.cell for w in writes} | {u: r.cell for u, (r, _) in final.items()}
    tally = Tally(
        attempted=len(writes),
        inserts=sum(1 for w in writes if w.kind == "insert" and w.error is None),
        deletes=sum(1 for w in writes if w.kind == "delete" and w.error is None),
        skipped=sum(skipped.values()),
        skipped_by_error=dict(skipped.most_common()),
        applied_late=late,
        orphan_mappings=orphans,
        unexplained=unexplained,
    )
    windows = {u: tuple(ws) for u, ws in changes.items()}
    return History(rows, live0, windows, cell_of), tally


def check_churn_walk(
    h: History,
    project: str | None,
    pages: Sequence[Page],
    start_s: float,
    end_s: float,
    slack_s: float = SLACK_S,
) -> WalkCheck:
    """Check the 200 pages of one walk made from ``start_s`` to ``end_s`` (see above)."""
    return check_history_walk(h, project, pages, start_s, end_s, slack_s)
