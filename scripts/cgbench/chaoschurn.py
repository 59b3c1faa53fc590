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
from typing import Literal

from cgbench.chaoscheck import Oracle, Page, Row, WalkCheck, in_listing_order
from cgbench.chaoswrites import Write

__all__ = ["SLACK_S", "History", "Tally", "check_churn_walk", "history"]

# The longest of those bounds (the gateway's defaults, which scripts/chaos keeps), plus 1 s.
SLACK_S = 6.0
State = Literal["stable", "changed", "gone"]


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


@dataclass(frozen=True)
class History:
    """Every instance live at some time in the run, in listing order, and when each changed."""

    rows: tuple[Row, ...]
    live_at_start: frozenset[str]
    changes: Mapping[str, tuple[tuple[float, float], ...]]  # (sent, answered or inf)
    cell_of: Mapping[str, str]  # every uuid written or read, the orphans' intended cells too

    def state(self, uuid: str, start_s: float, end_s: float) -> State:
        """``uuid`` over the walk ``[start_s, end_s]``: stable, changed or gone throughout."""
        windows = self.changes.get(uuid, ())
        if any(a <= end_s and b >= start_s for a, b in windows):
            return "changed"
        flips = sum(1 for _, b in windows if b < start_s)
        live = (uuid in self.live_at_start) != (flips % 2 == 1)
        return "stable" if live else "gone"


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
    scope = [r for r in h.rows if project is None or r.project_id == project]
    pos = {r.uuid: i for i, r in enumerate(scope)}
    state = {r.uuid: h.state(r.uuid, start_s - slack_s, end_s) for r in scope}
    served = [u for p in pages for u in p.ids]
    stubs = {u for p in pages for u in p.stubs}
    seen = set(served)
    last = -1
    out_of_order = gaps = explained = stub_missing = stub_unnamed = stub_extra = 0
    for page in pages:
        for u in page.stubs:
            stub_unnamed += h.cell_of.get(u) not in page.unavailable
            stub_extra += state.get(u, "gone") == "gone"
        known = [pos[u] for u in page.ids if u in pos]
        out_of_order += sum(1 for a, b in zip([last, *known], known, strict=False) if b <= a)
        end = len(scope) - 1 if page.last else max([last, *known])
        for i in range(last + 1, end + 1):
            u = scope[i].uuid
            if u in seen or state[u] != "stable":
                continue
            if scope[i].cell in page.unavailable:
                explained += 1
                stub_missing += page.with_stubs
            else:
                gaps += 1
        last = max(last, end)
    rows = [u for u in served if u not in stubs]
    return WalkCheck(
        rows=len(rows),
        expected=sum(1 for s in state.values() if s == "stable"),
        duplicates=sum(n - 1 for n in Counter(served).values() if n > 1),
        unknown=sum(1 for u in rows if u not in pos),
        out_of_order=out_of_order,
        gaps=gaps,
        explained=explained,
        stub_missing=stub_missing,
        stub_unnamed=stub_unnamed,
        stub_extra=stub_extra,
        partial_pages=sum(1 for p in pages if p.unavailable),
        stale=sum(1 for u in rows if state.get(u) == "gone"),
    )
