"""THE table of differences allowed between the real nova-api and cellgate.

Each entry is a Nova bug cellgate does not copy, or a feature another branch is adding
(``pending``: drop the entry when it lands, and the suite holds cellgate to Nova there
too). Each has a matcher that recognises the bug's signature in one difference, so an
entry cannot excuse anything else. The README's table is :func:`markdown_table`
(``tests/unit/test_known_differences.py`` checks it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlsplit

from tests.support.novasort import merge_compares_every_key, nullable_sort_keys
from tests.support.parity import Diff, Pair

__all__ = ["KNOWN", "REFUSING_CELL", "Known", "explain", "markdown_table"]

Kind = Literal["nova bug", "wording", "pending"]


@dataclass(frozen=True)
class Known:
    """One allowed difference: a name, whose it is, why, and its signature."""

    name: str
    kind: Kind
    reason: str
    matches: Callable[[Pair, Diff], bool]


def _field(name: str) -> Callable[[Pair, Diff], bool]:
    def matches(pair: Pair, diff: Diff) -> bool:
        return diff.where.rpartition(".")[2] == name and "." in diff.where

    return matches


def _null_compare_500(pair: Pair, diff: Diff) -> bool:
    return (
        diff.where == "status"
        and (diff.nova, diff.cellgate) == (500, 200)
        and bool(nullable_sort_keys(pair.probe.params))
    )


REFUSING_CELL = "a cell refusing connections"
"""The :attr:`Probe.setting` of probes asked with one cell's database refusing."""


def _cell_down_500(pair: Pair, diff: Diff) -> bool:
    return (
        diff.where == "status"
        and (diff.nova, diff.cellgate) == (500, 200)
        and pair.probe.setting == REFUSING_CELL
    )


def _merge_ties(pair: Pair, diff: Diff) -> bool:
    return diff.where == "ids" and not merge_compares_every_key(pair.probe.params)


def _query(href: object) -> tuple[str, list[tuple[str, str]]] | None:
    if not isinstance(href, str):
        return None
    parts = urlsplit(href)
    return parts.path, parse_qsl(parts.query, keep_blank_values=True)


def _next_collapses_repeats(pair: Pair, diff: Diff) -> bool:
    nova, ours = _query(diff.nova), _query(diff.cellgate)
    if diff.where != "next" or nova is None or ours is None or nova[0] != ours[0]:
        return False
    # Nova: OrderedDict(sorted(request.params.items())): one value per name, the last in
    # sorted order.
    collapsed = sorted(dict(sorted(ours[1])).items())
    return sorted(nova[1]) == collapsed and len(ours[1]) > len(nova[1])


def _next_on_full_last_page(pair: Pair, diff: Diff) -> bool:
    limits = [v for k, v in pair.probe.params if k == "limit"]
    full = bool(limits) and limits[-1].isdigit() and len(pair.cellgate.ids) == int(limits[-1])
    return diff.where == "next" and diff.cellgate is None and diff.nova is not None and full


def _tags_order(pair: Pair, diff: Diff) -> bool:
    return (
        _field("tags")(pair, diff)
        and isinstance(diff.nova, list)
        and isinstance(diff.cellgate, list)
        and sorted(diff.nova) == diff.cellgate
    )


def _wording(pair: Pair, diff: Diff) -> bool:
    nova, ours = diff.nova, diff.cellgate
    if diff.where != "error" or not isinstance(nova, dict) or not isinstance(ours, dict):
        return False
    if set(nova) != set(ours) or len(nova) != 1:
        return False
    (fault,) = nova
    return bool(nova[fault].get("code") == ours[fault].get("code") == pair.nova.status == 400)


def _project_in_links(pair: Pair, diff: Diff) -> bool:
    project = pair.probe.caller.project
    if project not in "&".join(f"{k}={v}" for k, v in pair.probe.params):
        return False
    field = diff.where.rpartition(".")[2]
    if field not in {"links", "image", "flavor", "next"}:
        return False
    return repr(diff.nova).replace(f"/{project}/", "/") == repr(diff.cellgate)


def _names(pair: Pair) -> list[str]:
    return [k for k, _ in pair.probe.params]


def _nova_ids_superset(pair: Pair, diff: Diff, name: str) -> bool:
    return (
        diff.where == "ids" and name in _names(pair) and set(pair.cellgate.ids) < set(pair.nova.ids)
    )


def _description_ignored(pair: Pair, diff: Diff) -> bool:
    return _nova_ids_superset(pair, diff, "description")


_NON_TEXT_REGEX = frozenset(
    {
        "power_state",
        "launch_index",
        "progress",
        "auto_disk_config",
        "created_at",
        "launched_at",
        "terminated_at",
    }
)


def _regex_on_integer(pair: Pair, diff: Diff) -> bool:
    names = set(_names(pair))
    return diff.where == "ids" and bool(names & _NON_TEXT_REGEX) and pair.nova.ids == []


def _null_marker(pair: Pair, diff: Diff) -> bool:
    return (
        diff.where == "ids"
        and "marker" in _names(pair)
        and bool(nullable_sort_keys(pair.probe.params))
    )


def _soft_deleted_status(pair: Pair, diff: Diff) -> bool:
    asked = pair.probe.params
    return (
        diff.where == "ids"
        and ("status", "SOFT_DELETED") in asked
        and "soft_deleted" not in _names(pair)
        and set(pair.nova.ids) < set(pair.cellgate.ids)
    )


KNOWN: tuple[Known, ...] = (
    Known(
        "nova: NULL sort values 500",
        "nova bug",
        "Nova's cross-cell merge compares sort values with Python's `<`: a NULL met by a "
        "value or another NULL raises TypeError, a 500 (sorting by `launched_at`, `task_state`, "
        "`host`... with NULLs present). cellgate orders NULLs first.",
        _null_compare_500,
    ),
    Known(
        "nova: a refused cell is a 500",
        "nova bug",
        "When a cell's database refuses connections Nova answers 500 to every listing, "
        "a member's too. cellgate answers with the other cells' servers, names the cell "
        "in `X-Cells-Unavailable` and shows its instances as stubs from 2.69 (a project "
        "with no instance there does not ask it).",
        _cell_down_500,
    ),
    Known(
        "nova: ties in the merge",
        "nova bug",
        "With fewer `sort_dir` than `sort_key`, Nova's merge compares only `zip(keys, dirs)` "
        "(the keys that have a direction, plus `uuid`'s when it was appended), so servers "
        "tied on that prefix leave the merge in arbitrary order and some are dropped after "
        "a marker. cellgate merges on the whole order its cells sort by.",
        _merge_ties,
    ),
    Known(
        "nova: next link drops repeated parameters",
        "nova bug",
        "Nova builds the next link from `dict(sorted(params))`: one value per name, so "
        "the second `sort_key` (or `status`, `uuid`...) is lost and the next page is "
        "another query. cellgate keeps every parameter.",
        _next_collapses_repeats,
    ),
    Known(
        "nova: next link on the last page",
        "nova bug",
        "Nova adds a next link whenever a page is full, so a listing whose length is a "
        "multiple of the limit ends with an empty page. cellgate links only when more "
        "servers follow.",
        _next_on_full_last_page,
    ),
    Known(
        "nova: tags in database order",
        "nova bug",
        "Nova lists a server's tags in whatever order the database returns the joined "
        "rows (no ORDER BY); cellgate sorts them.",
        _tags_order,
    ),
    Known(
        "nova: paging past NULL sort values",
        "nova bug",
        "After a marker, Nova's per-cell keyset predicate (oslo.db `paginate_query`) and "
        "PostgreSQL's NULLS LAST for ascending keys disagree with its merge, so pages "
        "sorted by a key holding NULLs (`locked_by`, `task_state`...) skip or repeat "
        "servers. cellgate has one NULL rule (lowest) in SQL, keyset and merge.",
        _null_marker,
    ),
    Known(
        "nova: project id in links",
        "nova bug",
        "Nova puts the caller's project id into every link when the request URL merely "
        "contains it (`project_id in request.url`), e.g. `?project_id=demo`; cellgate only "
        "when the path has it (`/v2.1/{project_id}/servers`).",
        _project_in_links,
    ),
    Known(
        "nova: description filter ignored",
        "nova bug",
        "Nova passes `description` to its database layer, which has no such column and "
        "drops it: every server is listed. cellgate filters `display_description` by the "
        "regex, as the API reference documents.",
        _description_ignored,
    ),
    Known(
        "nova: status=SOFT_DELETED lists nothing",
        "nova bug",
        "Nova maps `SOFT_DELETED` to `vm_state = soft-delete` but its database layer still "
        "excludes soft-deleted servers unless `soft_deleted=true` is also given, so the "
        "status filter alone lists none. cellgate lists them.",
        _soft_deleted_status,
    ),
    Known(
        "nova: regex filters on non-text columns on PostgreSQL",
        "nova bug",
        "Nova applies `power_state`, `launch_index`, `progress`, `auto_disk_config`, "
        "`created_at`, `launched_at` and `terminated_at` as regular expressions (`~`) to "
        "integer, boolean and timestamp columns: PostgreSQL refuses them in every cell and "
        "Nova lists nothing. cellgate matches `power_state` exactly and the others as Nova "
        "does on MySQL (on the column's MySQL text).",
        _regex_on_integer,
    ),
    Known(
        "400 message wording",
        "wording",
        "Both answer 400 with the same fault; the text differs (Nova's comes from "
        "jsonschema, its list of valid sort keys in set order, which changes with the "
        "process's hash seed).",
        _wording,
    ),
)


def explain(pair: Pair) -> tuple[list[Diff], set[str]]:
    """The diffs no entry explains, and the names of the entries that explained others."""
    unexplained: list[Diff] = []
    used: set[str] = set()
    for diff in pair.diffs:
        entry = next((k for k in KNOWN if k.matches(pair, diff)), None)
        if entry is None:
            unexplained.append(diff)
        else:
            used.add(entry.name)
    return unexplained, used


def markdown_table(entries: Sequence[Known] = KNOWN) -> str:
    """The README's table of allowed differences."""
    lines = ["| difference | whose | reason |", "|---|---|---|"]
    lines += [f"| {k.name} | {k.kind} | {k.reason} |" for k in entries]
    return "\n".join(lines)
