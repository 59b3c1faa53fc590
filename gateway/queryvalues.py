"""One query parameter's value, parsed and checked as Nova checks it (a 400 or 403 with
Nova's message otherwise): booleans, timestamps, regular expressions, ``limit``, the sort
keys and directions, tag lists. :mod:`gateway.request` decides which parameters apply and
builds the request from these.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings

from cells.order import Direction
from gateway.errors import BadRequest, Forbidden
from gateway.params import (
    ADMIN_SORT_KEYS,
    FALSE_VALUES,
    IGNORED_SORT_KEYS,
    MAX_REGEX_LENGTH,
    MAX_SORT_KEYS,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    POWER_STATE_RANGE,
    SORT_KEYS_SINCE,
    STRICT_QUERY_SINCE,
    TRUE_VALUES,
    VALID_SORT_KEYS,
    Version,
)
from gateway.sortparams import nova_order

__all__ = [
    "boolean",
    "limit",
    "power_state",
    "regex",
    "regex_format",
    "since",
    "sort_keys",
    "tags",
    "timestamp",
]

_DIGITS = re.compile(r"^[0-9]+$")


def boolean(name: str, value: str, *, strict: bool) -> bool:
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


def timestamp(name: str, value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace(" ", "+"))
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):  # year 1 at +14:00 has no UTC datetime
        raise BadRequest(f"Invalid filter field: {name}.") from None
    return parsed


def _compiles(value: str) -> bool:
    try:
        # re's FutureWarnings ("Possible nested set" for "[[") say nothing about validity;
        # under -W error (the tests) they would turn a 400 into a 500.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            re.compile(value)
    except re.error:
        return False
    return True


def power_state(value: str) -> int:
    try:
        state = int(value)
    except ValueError:
        raise BadRequest("Invalid filter field: power_state.") from None
    low, high = POWER_STATE_RANGE
    if not low <= state <= high:
        raise BadRequest("Invalid filter field: power_state.")
    return state


def regex_format(name: str, value: str) -> None:
    """Nova's schema check of a ``format: regex`` value: non-empty and compiling."""
    if not value or not _compiles(value):
        raise BadRequest(
            f"Invalid input for query parameters {name}. Value: {value}. '{value}' is not a 'regex'"
        )


def regex(name: str, value: str) -> str:
    if len(value) > MAX_REGEX_LENGTH:
        raise BadRequest(
            f"Invalid filter field: {name}. The regular expression has {len(value)} "
            f"characters; at most {MAX_REGEX_LENGTH} are allowed."
        )
    if not _compiles(value):
        raise BadRequest(f"Invalid filter field: {name}. Not a valid regular expression.")
    return value


def limit(value: str, max_limit: int) -> int:
    if not _DIGITS.match(value):
        raise BadRequest(
            f"Invalid input for query parameters limit. Value: {value}. "
            f"'{value}' does not match '^[0-9]*$'"
        )
    digits = value.strip().lstrip("0")
    if len(digits) > len(str(max_limit)):  # int() refuses more than 4300 digits
        return max_limit
    return min(int(digits or "0"), max_limit)


def sort_keys(
    keys: list[str], dirs: list[str], version: Version, admin: bool
) -> tuple[tuple[str, Direction], ...]:
    if len(keys) > MAX_SORT_KEYS:
        raise BadRequest(
            f"Invalid input for query parameters sort_key: {len(keys)} sort keys; "
            f"at most {MAX_SORT_KEYS} are allowed."
        )
    keys = [k.strip() for k in keys]
    dirs = [d.strip() for d in dirs]
    valid = VALID_SORT_KEYS | since(SORT_KEYS_SINCE, version)
    for d in dirs:
        if d not in ("asc", "desc"):
            raise BadRequest(
                "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'"
            )
    for key in keys:
        if key in valid:
            if key in ADMIN_SORT_KEYS and not admin:
                raise Forbidden(f"Only administrators can sort servers by {key}")
        elif key not in IGNORED_SORT_KEYS or version >= STRICT_QUERY_SINCE:
            allowed = ", ".join(f"'{k}'" for k in sorted(valid))
            raise BadRequest(
                f"Invalid input for query parameters sort_key. Value: {key}. "
                f"'{key}' is not one of [{allowed}]"
            )
    try:
        return nova_order(keys, dirs, lambda key: key not in valid)
    except ValueError as exc:
        raise BadRequest(f"Invalid input received: {exc}") from None


def since(table: tuple[tuple[Version, frozenset[str]], ...], version: Version) -> frozenset[str]:
    """The names ``table`` makes available at ``version``."""
    allowed: set[str] = set()
    for since, names in table:
        if version >= since:
            allowed |= names
    return frozenset(allowed)


def tags(name: str, value: str) -> frozenset[str]:
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
