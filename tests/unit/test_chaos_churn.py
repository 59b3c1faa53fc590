"""The chaos run's checks with writes (``cgbench.chaoschurn``): each row's history from the
writer's log and the final state, and the churn tests' rule for a walk."""

from __future__ import annotations

import datetime as dt
import math

from cgbench.chaoscheck import Oracle, Page, Row
from cgbench.chaoschurn import SLACK_S, History, Tally, check_churn_walk, history
from cgbench.chaoswrites import Write

T = dt.datetime(2026, 1, 1)


def _row(uuid: str, minutes: int, cell: str = "c1", project: str = "p") -> Row:
    return Row(uuid, project, T + dt.timedelta(minutes=minutes), cell)


# Newest first: a (60) b (50) c (40) d (30) e (20); n is inserted at 45, between b and c.
SEEDED = [_row("a", 60), _row("b", 50, "c2"), _row("c", 40), _row("d", 30, "c2"), _row("e", 20)]
NEW = _row("n", 45, "c2")
ORACLE = Oracle(tuple(SEEDED), {r.uuid: r.cell for r in SEEDED}, (5, 5))


def _final(deleted: set[str], inserted: tuple[Row, ...] = (NEW,)) -> dict[str, tuple[Row, bool]]:
    return {r.uuid: (r, r.uuid not in deleted) for r in (*SEEDED, *inserted)}


def _page(t_s: float, ids: str, last: bool = True, named: str = "", stubs: str = "") -> Page:
    return Page(t_s, tuple(ids), frozenset(stubs), frozenset(named.split(",")) - {""}, last, False)


# n inserted during 100-101 s, c soft-deleted during 100-100.5 s.
WRITES = [Write("insert", "n", "c2", 100.0, 101.0), Write("delete", "c", "c1", 100.0, 100.5)]


def _story(writes: list[Write] = WRITES, deleted: set[str] | None = None) -> tuple[History, Tally]:
    return history(ORACLE, _final({"c"} if deleted is None else deleted), writes)


def test_rows_written_during_a_walk_may_appear_or_not_the_others_exactly_once() -> None:
    h, tally = _story()
    assert (tally.inserts, tally.deletes, tally.skipped, tally.unexplained) == (1, 1, 0, 0)
    for ids in ("abncde", "abde", "abnde", "abcde"):  # before, after and between the writes
        pages = [_page(99.0, ids[:2], last=False), _page(102.0, ids[2:])]
        check = check_churn_walk(h, "p", pages, 98.0, 102.0)
        assert (check.gaps, check.duplicates, check.unknown, check.out_of_order) == (0, 0, 0, 0)
        assert check.expected == 4  # a, b, d, e: live throughout
    # After the writes (and the slack): n must be there, c must not.
    later = SLACK_S + 110.0
    assert check_churn_walk(h, "p", [_page(later, "abnde")], later, later + 1).gaps == 0
    missing_n = check_churn_walk(h, "p", [_page(later, "abde")], later, later + 1)
    assert missing_n.gaps == 1
    stale_c = check_churn_walk(h, "p", [_page(later, "abncde")], later, later + 1)
    assert (stale_c.stale, stale_c.unknown, stale_c.gaps) == (1, 0, 0)


def test_a_stable_row_missing_is_a_gap_unless_the_page_named_its_cell() -> None:
    h, _ = _story()
    unnamed = check_churn_walk(h, "p", [_page(99.0, "ab", last=False), _page(99.5, "e")], 0, 99.5)
    assert (unnamed.gaps, unnamed.explained) == (2, 0)  # c and d (c is deleted only at 100)
    named = check_churn_walk(
        h, "p", [_page(99.0, "ab", False), _page(99.5, "e", named="c1")], 0, 99.5
    )
    assert (named.gaps, named.explained) == (1, 1)  # d's cell (c2) was not named


def test_a_changed_row_twice_a_row_never_live_and_one_out_of_place_are_counted() -> None:
    h, _ = _story()
    twice = check_churn_walk(h, "p", [_page(99, "abn", False), _page(100, "ncde")], 98, 102)
    assert twice.duplicates == 1
    never = check_churn_walk(h, "p", [_page(99, "abzde")], 98, 102)
    assert (never.unknown, never.gaps) == (1, 0)
    swapped = check_churn_walk(h, "p", [_page(99, "abdne")], 98, 102)
    assert swapped.out_of_order == 1  # n (45) listed after d (30)
    other = check_churn_walk(h, "q", [_page(99, "a")], 98, 102)  # project q has no rows
    assert other.unknown == 1


def test_the_slack_covers_writes_just_before_a_walk_and_no_more() -> None:
    h, _ = _story()
    soon = 101.0 + SLACK_S - 1  # the caches may still answer from before the writes
    assert check_churn_walk(h, "p", [_page(soon, "abcde")], soon, soon + 1).stale == 0
    late = 101.0 + SLACK_S + 1
    assert check_churn_walk(h, "p", [_page(late, "abcde")], late, late + 1).stale == 1


def test_failed_writes_are_skipped_or_late_as_the_final_state_says() -> None:
    writes = [
        # Frozen cell: the COMMIT ran after the thaw (n is in the final state).
        Write("insert", "n", "c2", 100.0, 102.5, "TimeoutError: ", mapping_written=True),
        # Stopped cell: nothing happened, but the mapping row was written.
        Write("insert", "m", "c1", 100.0, 100.1, "ConnectionRefusedError: x", True),
        Write("delete", "c", "c1", 100.0, 100.1, "OSError: refused"),
    ]
    h, tally = history(ORACLE, _final(set()), writes)
    assert tally.applied_late == 1
    assert (tally.skipped, tally.orphan_mappings, tally.unexplained) == (2, 1, 0)
    assert tally.skipped_by_error == {"ConnectionRefusedError": 1, "OSError": 1}
    assert h.changes["n"] == ((100.0, math.inf),)  # when: unknown, any time after sent
    assert h.state("n", 500.0, 501.0) == "changed"
    assert h.state("c", 500.0, 501.0) == "stable"
    assert h.cell_of["m"] == "c1"  # an orphan's stub belongs to the cell it was meant for


def test_a_change_no_write_explains_is_counted() -> None:
    _, tally = history(ORACLE, _final({"d"}, ()), [])
    assert tally.unexplained == 1
    _, lost = history(ORACLE, _final(set(), ()), [Write("insert", "n", "c2", 1.0, 2.0)])
    assert lost.unexplained == 1  # committed, yet not in the final state
