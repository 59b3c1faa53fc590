"""Parse and validate a listing query string into one immutable :class:`ListRequest`.

Nova's rules, kept because clients rely on them: ``limit`` default and maximum
``max_limit`` (clamped), ``0`` gives an empty list, anything but digits is a 400;
``sort_key``/``sort_dir`` repeatable, Nova's valid keys, ``host``/``node`` admin-only (403);
callers without ``allow_all_filters`` silently lose the filters their microversion does not
allow; from 2.75 an unknown parameter is a 400. Who may do what is the policy's
(:class:`~gateway.policy.ListGrants`): the listing itself and ``all_tenants`` (403 naming
the rule), every filter; "admin" is ``context_is_admin``. The order follows Nova's
padding rule exactly (:mod:`gateway.sortparams`), ``uuid`` always among the keys.

A single-valued parameter given more than once is read from its last value, as Nova does,
but every value is validated: ``limit=x&limit=2`` is a 400, not a page of two. That holds
for the exact filters too: ``uuid=a&uuid=b`` filters by ``b`` alone, as do ``vm_state``,
``task_state`` and ``power_state`` (Nova's ``power_state`` is a regular expression on an
integer column, which PostgreSQL refuses; cellgate matches the last value exactly). Only
``status`` (and the sort parameters) count every value, and a status replaces any
``vm_state``/``task_state`` given beside it, and of two spellings of one filter the
later one counts (:func:`_shadowed`). Every ``format: regex`` value of Nova's query
schema must be a non-empty, valid regular expression (a 400 before the policy drops the
filters a caller may not use, as Nova's schema validation runs first). Costly input is
bounded (:mod:`gateway.params`: tags per filter and their length, regex length, sort keys,
values of one parameter) with a 400 before any cell is asked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from cells.filters import SOFT_DELETED, InstanceFilters
from cells.order import Direction
from gateway import queryvalues
from gateway.auth import Principal
from gateway.errors import BadRequest, Forbidden
from gateway.params import (
    JOINED_TABLES,
    KNOWN_PARAMS,
    MAX_PARAM_REPEATS,
    PAGING_PARAMS,
    PARAMS_SINCE,
    REGEX_FILTERS,
    REGEX_PARAMS_SINCE,
    STRICT_QUERY_SINCE,
    TAG_FILTERS,
    USER_FILTERS,
    Version,
)
from gateway.policy import ListGrants
from gateway.statuses import states_for_statuses

__all__ = ["ListRequest", "applied_query", "parse_list_request"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ListRequest:
    """A validated listing request; ``filters.project_id`` is the scope (``None``: all)."""

    limit: int
    marker: str | None
    sort: tuple[tuple[str, Direction], ...]
    filters: InstanceFilters
    flavorid: str | None  # resolved to instance_type_ids through the API DB
    all_tenants: bool
    empty: bool  # Nova answers an invalid status below 2.38 with an empty list


def _last(values: dict[str, list[str]], name: str) -> str | None:
    found = values.get(name)
    return found[-1] if found else None


def _last_set(values: dict[str, list[str]], name: str) -> frozenset[str] | None:
    """The last value of ``name`` as a one-value set (``None`` when not given)."""
    last = _last(values, name)
    return None if last is None else frozenset({last})


_ALIASES = (("name", "display_name"), ("image", "image_ref"), ("tenant_id", "project_id"))


def _shadowed(values: dict[str, list[str]]) -> frozenset[str]:
    """The aliases Nova's filters overwrite. ``search_opts`` keeps the query's order of
    first appearance and each alias it meets overwrites the one filter (``name`` and
    ``display_name`` the ``display_name`` regex, ``image`` and ``image_ref`` the image,
    ``tenant_id`` and ``project_id`` the project): of a pair given together, the name that
    first appears earlier is lost. ``description`` is lost beside ``display_description``
    (Nova drops ``description`` altogether: its database has no such column)."""
    lost: set[str] = set()
    for pair in _ALIASES:
        given = [name for name in values if name in pair]
        lost.update(given[:-1])
    if "display_description" in values:
        lost.add("description")
    return frozenset(lost)


def _alias(values: dict[str, list[str]], shadowed: frozenset[str], *names: str) -> str | None:
    """The last value of whichever of ``names`` is given and not ``shadowed``."""
    return next((_last(values, n) for n in names if n in values and n not in shadowed), None)


def _each(values: dict[str, list[str]], name: str, check: Callable[[str], T]) -> T | None:
    """``check`` every value of a single-valued parameter; the last one's result wins."""
    result = None
    for value in values.get(name, ()):
        result = check(value)
    return result


_NEWER_PARAMS = frozenset().union(*(names for _, names in PARAMS_SINCE))


def applied_query(items: Sequence[tuple[str, str]], version: Version) -> list[tuple[str, str]]:
    """The query as Nova's schema validation leaves it for ``version``.

    Below 2.75 Nova's schema strips what it does not know at that microversion (unknown
    names, and ``tags``... before 2.26, ``changes-before`` before 2.66, ``locked`` before
    2.73), keeping ``_``-prefixed names and joined tables (a 400 later): such a parameter
    neither filters nor appears in the next link. From 2.75 unknown names are a 400.
    """
    if version >= STRICT_QUERY_SINCE:
        return list(items)
    known = (
        (KNOWN_PARAMS - _NEWER_PARAMS) | queryvalues.since(PARAMS_SINCE, version) | JOINED_TABLES
    )
    return [(k, v) for k, v in items if k in known or k.startswith("_")]


def parse_list_request(
    items: Sequence[tuple[str, str]],
    principal: Principal,
    grants: ListGrants,
    version: Version,
    max_limit: int,
) -> ListRequest:
    """Validate the query string of ``GET /servers[/detail]`` for ``principal`` with the
    policy's ``grants``; raises 4xx errors."""
    values: dict[str, list[str]] = {}
    for name, value in items:
        values.setdefault(name, []).append(value)
    for name, found in values.items():
        if len(found) > MAX_PARAM_REPEATS:
            raise BadRequest(
                f"Invalid input for query parameters {name}: {len(found)} values; "
                f"at most {MAX_PARAM_REPEATS} are allowed."
            )

    for name in values:
        internal = name.startswith("_") or name in JOINED_TABLES
        if version >= STRICT_QUERY_SINCE and name not in KNOWN_PARAMS and not internal:
            raise BadRequest(
                "Invalid input for query parameters. Additional properties are not "
                f"allowed ('{name}' was unexpected)"
            )
    regex_params = queryvalues.since(REGEX_PARAMS_SINCE, version)
    for name, found in values.items():
        if name in regex_params:
            for value in found:
                queryvalues.regex_format(name, value)
    if not grants.allowed:
        raise Forbidden(f"Policy doesn't allow {grants.rule} to be performed.")
    if not grants.all_filters:
        allowed = queryvalues.since(USER_FILTERS, version) | PAGING_PARAMS
        values = {k: v for k, v in values.items() if k in allowed}
    # After the policy's cut, as Nova: a member's "_x" or "metadata" is dropped, not a 400.
    for name in values:
        if name.startswith("_") or name in JOINED_TABLES:
            raise BadRequest(f"Invalid filter field: {name}.")
    for name, found in values.items():
        # PostgreSQL text cannot hold NUL: no row can match, and the API DB would fail.
        if name in KNOWN_PARAMS and any("\x00" in value for value in found):
            raise BadRequest(f"Invalid input for query parameters {name}: NUL character.")

    limit = _each(values, "limit", lambda v: queryvalues.limit(v, max_limit))
    if limit is None:
        limit = max_limit
    marker = _last(values, "marker")
    sort = queryvalues.sort_keys(
        values.get("sort_key", []), values.get("sort_dir", []), version, grants.admin
    )

    all_tenants = bool(
        _each(
            values,
            "all_tenants",
            lambda v: v == "" or queryvalues.boolean("all_tenants", v, strict=True),
        )
    )
    if all_tenants and not grants.all_tenants:
        raise Forbidden(f"Policy doesn't allow {grants.all_tenants_rule} to be performed.")
    shadowed = _shadowed(values)
    if all_tenants:
        project_id = _alias(values, shadowed, "project_id", "tenant_id")
    else:
        project_id = principal.project_id

    # Nova reads one value of vm_state and task_state (the last); a status replaces both
    # with the lists it maps to (task_state only when no status is a vm_state's default).
    vm_states = _last_set(values, "vm_state")
    task_states: frozenset[str | None] | None = _last_set(values, "task_state")
    include_soft_deleted = False
    empty = False
    statuses = values.get("status")
    if statuses:
        found_vm, found_task = states_for_statuses(statuses)
        if not found_vm:
            if version >= (2, 38):
                raise BadRequest("Invalid status value")
            empty = True
        vm_states = found_vm
        if found_task is not None:
            task_states = frozenset(found_task)
        include_soft_deleted = SOFT_DELETED in vm_states

    deleted: bool | None = False
    if "deleted" in values:
        deleted = queryvalues.boolean("deleted", values["deleted"][-1], strict=False)
    elif "changes-since" in values or "changes-before" in values:
        deleted = None
    # Only a status asks for deleted servers: Nova compares its list with ['deleted'], and a
    # vm_state=deleted (a string) never equals it.
    if statuses and vm_states == frozenset({"deleted"}):
        if not grants.admin:
            raise Forbidden("Only administrators may list deleted instances")
        deleted = True

    changes_since = _each(values, "changes-since", partial(queryvalues.timestamp, "changes-since"))
    changes_before = _each(
        values, "changes-before", partial(queryvalues.timestamp, "changes-before")
    )
    if changes_since and changes_before and changes_before < changes_since:
        raise BadRequest("The value of changes-since must be less than or equal to changes-before.")

    locked = _each(values, "locked", lambda v: queryvalues.boolean("locked", v, strict=True))

    # Every value validated; the last one filters (exactly: see the module docstring).
    power_state = _each(values, "power_state", queryvalues.power_state)
    power_states = None if power_state is None else frozenset({power_state})

    regex = tuple(
        (column, pattern)
        for name, column in REGEX_FILTERS.items()
        if (pattern := _each(values, name, partial(queryvalues.regex, name))) is not None
        and name not in shadowed
    )
    tags = {
        name: _each(values, name, partial(queryvalues.tags, name)) or frozenset()
        for name in TAG_FILTERS
    }
    image = _alias(values, shadowed, "image", "image_ref")
    filters = InstanceFilters(
        project_id=project_id,
        user_id=_last(values, "user_id"),
        image_ref=image,
        host=_last(values, "host"),
        locked=locked,
        vm_states=vm_states,
        task_states=task_states,
        power_states=power_states,
        uuids=_last_set(values, "uuid"),
        regex=regex,
        ip=_each(values, "ip", partial(queryvalues.regex, "ip")),
        ip6=_each(values, "ip6", partial(queryvalues.regex, "ip6")),
        tags=tags["tags"],
        tags_any=tags["tags-any"],
        not_tags=tags["not-tags"],
        not_tags_any=tags["not-tags-any"],
        changes_since=changes_since,
        changes_before=changes_before,
        deleted=deleted,
        include_soft_deleted=include_soft_deleted,
        # Nova passes the raw string on: any non-empty value is true ("false" too).
        soft_deleted=None if "soft_deleted" not in values else values["soft_deleted"][-1] != "",
    )
    return ListRequest(
        limit=limit,
        marker=marker,
        sort=sort,
        filters=filters,
        flavorid=_last(values, "flavor"),
        all_tenants=all_tenants,
        empty=empty,
    )
