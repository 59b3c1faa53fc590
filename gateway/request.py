"""Parse and validate a listing query string into one immutable :class:`ListRequest`.

Nova's rules, kept because clients rely on them: ``limit`` default and maximum
``max_limit`` (clamped), ``0`` gives an empty list, anything but digits is a 400;
``sort_key``/``sort_dir`` repeatable, Nova's valid keys, ``host``/``node`` admin-only (403);
callers without ``allow_all_filters`` silently lose the filters their microversion does not
allow; from 2.75 an unknown parameter is a 400. Who may do what is the policy's
(:class:`~gateway.policy.ListGrants`): the listing itself and ``all_tenants`` (403 naming
the rule), every filter; "admin" is ``context_is_admin``. Improvements: directions are
padded with ``desc`` one for one (Nova misaligns them) and ``uuid asc`` always ends the
order.

A single-valued parameter given more than once is read from its last value, as Nova does,
but every value is validated: ``limit=x&limit=2`` is a 400, not a page of two. Costly input
is bounded (:mod:`gateway.params`: tags per filter and their length, regex length, sort
keys, values of one parameter) with a 400 before any cell is asked.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from cells.filters import SOFT_DELETED, InstanceFilters
from cells.order import Direction
from gateway.auth import Principal
from gateway.errors import BadRequest, Forbidden
from gateway.params import (
    ADMIN_SORT_KEYS,
    FALSE_VALUES,
    IGNORED_SORT_KEYS,
    JOINED_TABLES,
    KNOWN_PARAMS,
    MAX_PARAM_REPEATS,
    MAX_REGEX_LENGTH,
    MAX_SORT_KEYS,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    PAGING_PARAMS,
    POWER_STATE_RANGE,
    REGEX_FILTERS,
    SORT_KEYS_SINCE,
    STRICT_QUERY_SINCE,
    TAG_FILTERS,
    TRUE_VALUES,
    UNSUPPORTED_FILTERS,
    USER_FILTERS,
    VALID_SORT_KEYS,
    Version,
)
from gateway.policy import ListGrants
from gateway.states import states_for_statuses

__all__ = ["ListRequest", "parse_list_request"]

_DIGITS = re.compile(r"^[0-9]+$")
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


def _bool(name: str, value: str, *, strict: bool) -> bool:
    lowered = value.strip().lower()
    if lowered in TRUE_VALUES:
        return True
    if lowered in FALSE_VALUES or not strict:
        return False
    raise BadRequest(
        f"Invalid input for query parameters {name}. Value: {value}. "
        "Unrecognized value, acceptable values are: 0, 1, f, false, n, no, off, on, t, "
        "true, y, yes"
    )


def _timestamp(name: str, value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace(" ", "+"))
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):  # year 1 at +14:00 has no UTC datetime
        raise BadRequest(f"Invalid filter field: {name}.") from None
    return parsed


def _regex(name: str, value: str) -> str:
    if len(value) > MAX_REGEX_LENGTH:
        raise BadRequest(
            f"Invalid filter field: {name}. The regular expression has {len(value)} "
            f"characters; at most {MAX_REGEX_LENGTH} are allowed."
        )
    try:
        # re's FutureWarnings ("Possible nested set" for "[[") say nothing about validity;
        # under -W error (the tests) they would turn a 400 into a 500.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(value)
    except re.error:
        raise BadRequest(f"Invalid filter field: {name}. Not a valid regular expression.") from None
    return value


def _each(values: dict[str, list[str]], name: str, check: Callable[[str], T]) -> T | None:
    """``check`` every value of a single-valued parameter; the last one's result wins."""
    result = None
    for value in values.get(name, ()):
        result = check(value)
    return result


def _limit(value: str, max_limit: int) -> int:
    if not _DIGITS.match(value):
        raise BadRequest(
            f"Invalid input for query parameters limit. Value: {value}. "
            f"'{value}' does not match '^[0-9]*$'"
        )
    digits = value.strip().lstrip("0")
    if len(digits) > len(str(max_limit)):  # int() refuses more than 4300 digits
        return max_limit
    return min(int(digits or "0"), max_limit)


def _sort(
    keys: list[str], dirs: list[str], version: Version, admin: bool
) -> tuple[tuple[str, Direction], ...]:
    if len(keys) > MAX_SORT_KEYS:
        raise BadRequest(
            f"Invalid input for query parameters sort_key: {len(keys)} sort keys; "
            f"at most {MAX_SORT_KEYS} are allowed."
        )
    keys = [k.strip() for k in keys] or ["created_at"]
    dirs = [d.strip() for d in dirs] or ["desc"]
    valid = VALID_SORT_KEYS | _since(SORT_KEYS_SINCE, version)
    for d in dirs:
        if d not in ("asc", "desc"):
            raise BadRequest(
                "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'"
            )
    if len(dirs) > len(keys):
        raise BadRequest("Invalid input received: Sort direction size exceeds sort key size")
    pairs: list[tuple[str, Direction]] = []
    for i, key in enumerate(keys):
        if key in valid:
            if key in ADMIN_SORT_KEYS and not admin:
                raise Forbidden(f"Only administrators can sort servers by {key}")
            pairs.append((key, Direction(dirs[i] if i < len(dirs) else "desc")))
        elif key in IGNORED_SORT_KEYS and version < STRICT_QUERY_SINCE:
            continue
        else:
            allowed = ", ".join(f"'{k}'" for k in sorted(valid))
            raise BadRequest(
                f"Invalid input for query parameters sort_key. Value: {key}. "
                f"'{key}' is not one of [{allowed}]"
            )
    return tuple(pairs) or (("created_at", Direction.DESC),)


def _since(table: tuple[tuple[Version, frozenset[str]], ...], version: Version) -> frozenset[str]:
    """The names ``table`` makes available at ``version``."""
    allowed: set[str] = set()
    for since, names in table:
        if version >= since:
            allowed |= names
    return frozenset(allowed)


def _tags(name: str, value: str) -> frozenset[str]:
    tags = [tag.strip() for tag in value.split(",") if tag.strip()]
    if len(tags) > MAX_TAGS:
        raise BadRequest(
            f"Invalid input for query parameters {name}: {len(tags)} tags; "
            f"at most {MAX_TAGS} are allowed."
        )
    if any(len(tag) > MAX_TAG_LENGTH for tag in tags):
        raise BadRequest(
            f"Invalid input for query parameters {name}: a tag is longer than "
            f"{MAX_TAG_LENGTH} characters."
        )
    return frozenset(tags)


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
        if name.startswith("_") or name in JOINED_TABLES:
            raise BadRequest(f"Invalid filter field: {name}.")
        if version >= STRICT_QUERY_SINCE and name not in KNOWN_PARAMS:
            raise BadRequest(
                "Invalid input for query parameters. Additional properties are not "
                f"allowed ('{name}' was unexpected)"
            )
    if not grants.allowed:
        raise Forbidden(f"Policy doesn't allow {grants.rule} to be performed.")
    if not grants.all_filters:
        allowed = _since(USER_FILTERS, version) | PAGING_PARAMS
        values = {k: v for k, v in values.items() if k in allowed}
    for name, found in values.items():
        # PostgreSQL text cannot hold NUL: no row can match, and the API DB would fail.
        if name in KNOWN_PARAMS and any("\x00" in value for value in found):
            raise BadRequest(f"Invalid input for query parameters {name}: NUL character.")

    limit = _each(values, "limit", lambda v: _limit(v, max_limit))
    if limit is None:
        limit = max_limit
    marker = _last(values, "marker")
    sort = _sort(values.get("sort_key", []), values.get("sort_dir", []), version, grants.admin)

    for name in values:
        if name in UNSUPPORTED_FILTERS:
            raise BadRequest(f"Filter {name} is not supported by this gateway.")

    all_tenants = bool(
        _each(values, "all_tenants", lambda v: v == "" or _bool("all_tenants", v, strict=True))
    )
    if all_tenants and not grants.all_tenants:
        raise Forbidden(f"Policy doesn't allow {grants.all_tenants_rule} to be performed.")
    if all_tenants:
        project_id = _last(values, "project_id") or _last(values, "tenant_id")
    else:
        project_id = principal.project_id

    vm_states: set[str] | None = None
    task_states: frozenset[str | None] | None = None
    include_soft_deleted = False
    empty = False
    statuses = values.get("status")
    if statuses:
        found_vm, found_task = states_for_statuses(statuses)
        if not found_vm:
            if version >= (2, 38):
                raise BadRequest("Invalid status value")
            empty = True
        vm_states = set(found_vm)
        if found_task is not None:
            task_states = frozenset(found_task)
        include_soft_deleted = SOFT_DELETED in vm_states
    if "vm_state" in values:
        requested = set(values["vm_state"])
        vm_states = requested if vm_states is None else vm_states & requested
    if "task_state" in values:
        task_states = frozenset(values["task_state"])

    deleted: bool | None = False
    if "deleted" in values:
        deleted = _bool("deleted", values["deleted"][-1], strict=False)
    elif "changes-since" in values or "changes-before" in values:
        deleted = None
    if vm_states == {"deleted"}:
        if not grants.admin:
            raise Forbidden("Only administrators may list deleted instances")
        deleted = True

    changes_since = _each(values, "changes-since", partial(_timestamp, "changes-since"))
    changes_before = _each(values, "changes-before", partial(_timestamp, "changes-before"))
    if changes_since and changes_before and changes_before < changes_since:
        raise BadRequest("The value of changes-since must be less than or equal to changes-before.")

    locked = _each(values, "locked", lambda v: _bool("locked", v, strict=True))

    power_states = None
    if "power_state" in values:
        try:
            power_states = frozenset(int(v) for v in values["power_state"])
        except ValueError:
            raise BadRequest("Invalid filter field: power_state.") from None
        low, high = POWER_STATE_RANGE
        if any(not low <= state <= high for state in power_states):
            raise BadRequest("Invalid filter field: power_state.")

    regex = tuple(
        (column, pattern)
        for name, column in REGEX_FILTERS.items()
        if (pattern := _each(values, name, partial(_regex, name))) is not None
    )
    tags = {name: _each(values, name, partial(_tags, name)) or frozenset() for name in TAG_FILTERS}
    image = _last(values, "image") or _last(values, "image_ref")
    filters = InstanceFilters(
        project_id=project_id,
        user_id=_last(values, "user_id"),
        image_ref=image,
        host=_last(values, "host"),
        locked=locked,
        vm_states=frozenset(vm_states) if vm_states is not None else None,
        task_states=task_states,
        power_states=power_states,
        uuids=frozenset(values["uuid"]) if "uuid" in values else None,
        regex=regex,
        tags=tags["tags"],
        tags_any=tags["tags-any"],
        not_tags=tags["not-tags"],
        not_tags_any=tags["not-tags-any"],
        changes_since=changes_since,
        changes_before=changes_before,
        deleted=deleted,
        include_soft_deleted=include_soft_deleted,
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
