"""The listing's query parameters in the OpenAPI document (:mod:`gateway.openapi`), from
the tables that parse them (:mod:`gateway.params`): each one's type, repeats, enum and
bounds, what it means, and who may use it from which microversion."""

from __future__ import annotations

from cells.order import Direction
from gateway.openapischemas import STRING, Json, format_version
from gateway.params import (
    ADMIN_SORT_KEYS,
    BOOLEAN_PARAMS,
    FALSE_VALUES,
    IGNORED_SORT_KEYS,
    KNOWN_PARAMS,
    MAX_PARAM_REPEATS,
    MAX_REGEX_LENGTH,
    MAX_SORT_KEYS,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    PAGING_PARAMS,
    POWER_STATE_RANGE,
    REGEX_FILTERS,
    REPEATABLE_PARAMS,
    SORT_KEYS_SINCE,
    STRICT_QUERY_SINCE,
    TAG_FILTERS,
    TIMESTAMP_PARAMS,
    TRUE_VALUES,
    USER_FILTERS,
    VALID_SORT_KEYS,
)
from gateway.statuses import shown_statuses
from gateway.versions import MIN_VERSION

__all__ = ["listing_description", "query_parameters"]


def listing_description() -> str:
    """What the listing's description says about parameters not listed or repeated."""
    return (
        f"From {format_version(STRICT_QUERY_SINCE)} a query parameter not listed here is a 400; "
        "before, it is ignored. A parameter given twice that is not documented as an "
        "array is read from its last value (every value is validated), as Nova reads it."
    )


def query_parameters() -> list[Json]:
    """Every query parameter of the listing, from :mod:`gateway.params`."""
    return [_query_parameter(name) for name in sorted(KNOWN_PARAMS)]


def _query_parameter(name: str) -> Json:
    item, meaning = _value(name)
    parameter: Json = {"name": name, "in": "query", "description": f"{meaning} {_who(name)}"}
    if name in REPEATABLE_PARAMS:
        bound = MAX_SORT_KEYS if name in ("sort_key", "sort_dir") else MAX_PARAM_REPEATS
        parameter.update(
            style="form",
            explode=True,
            schema={"type": "array", "items": item, "maxItems": bound},
        )
    else:
        parameter["schema"] = item
    return parameter


def _value(name: str) -> tuple[Json, str]:
    """The schema of one value of ``name``, and what it means."""
    if name == "limit":
        return {"type": "integer", "minimum": 0}, (
            "Page size; larger values are clamped to max_limit (1000 by default), 0 gives "
            "an empty list. Repeats are all validated, the last one counts."
        )
    if name == "marker":
        return STRING, "The id of the last server of the previous page."
    if name == "sort_key":
        keys = VALID_SORT_KEYS.union(*(names for _, names in SORT_KEYS_SINCE))
        since = "; ".join(
            f"{', '.join(sorted(n))} from {format_version(v)}" for v, n in SORT_KEYS_SINCE
        )
        return {"type": "string", "enum": sorted(keys)}, (
            f"At most {MAX_SORT_KEYS}; `uuid asc` always ends the order. {since}; "
            f"{', '.join(sorted(ADMIN_SORT_KEYS))} are admin-only (403). Before "
            f"{format_version(STRICT_QUERY_SINCE)} these are accepted and ignored: "
            f"{', '.join(sorted(IGNORED_SORT_KEYS))}."
        )
    if name == "sort_dir":
        return {"type": "string", "enum": [d.value for d in Direction]}, (
            "One per sort_key, in order; a key without one sorts desc."
        )
    if name == "status":
        return {"type": "string", "enum": shown_statuses()}, (
            "Nova's server status, case-insensitive. An unknown one is a 400 from 2.38, "
            "an empty list before."
        )
    if name == "power_state":
        low, high = POWER_STATE_RANGE
        return {"type": "integer", "minimum": low, "maximum": high}, "Nova's power state."
    if name in BOOLEAN_PARAMS:
        spellings = sorted(TRUE_VALUES | FALSE_VALUES)
        if name == "all_tenants":
            spellings.insert(0, "")  # the bare `all_tenants` means true
        return {"type": "string", "enum": spellings}, "A boolean, case-insensitive."
    if name in TIMESTAMP_PARAMS:
        return {"type": "string", "format": "date-time"}, "ISO 8601; no zone means UTC."
    if name in REGEX_FILTERS:
        return {
            "type": "string",
            "format": "regex",
            "minLength": 1,
            "maxLength": MAX_REGEX_LENGTH,
        }, (
            f"An unanchored regular expression on {REGEX_FILTERS[name]}"
            f"{_text_of(REGEX_FILTERS[name])}."
        )
    if name in ("ip", "ip6"):
        version = 4 if name == "ip" else 6
        return {
            "type": "string",
            "format": "regex",
            "minLength": 1,
            "maxLength": MAX_REGEX_LENGTH,
        }, (
            f"A regular expression matched at the start of each IPv{version} fixed address "
            "of the server's network info cache; with a Neutron that has "
            "ip-substring-filtering, a substring of a port's fixed IP, as Nova asks it."
        )
    if name in TAG_FILTERS:
        return STRING, (
            f"Comma-separated tags: at most {MAX_TAGS}, each at most {MAX_TAG_LENGTH} characters."
        )
    if name in ("project_id", "tenant_id"):
        return STRING, "With all_tenants, one project's servers (project_id wins)."
    return STRING, "Any of the values, exactly." if name in REPEATABLE_PARAMS else "Exact match."


_AS_TEXT = {
    "created_at": "YYYY-MM-DD HH:MM:SS",
    "launched_at": "YYYY-MM-DD HH:MM:SS",
    "terminated_at": "YYYY-MM-DD HH:MM:SS",
    "auto_disk_config": "1 or 0",
    "launch_index": "the number",
    "progress": "the number",
}


def _text_of(column: str) -> str:
    """How a non-text column is matched (as Nova's ``REGEXP`` sees it on MySQL)."""
    spelled = _AS_TEXT.get(column)
    return "" if spelled is None else f", matched on its text as MySQL writes it ({spelled})"


def _who(name: str) -> str:
    if name == "all_tenants":
        return "Admin only (403 for others); project_id or tenant_id then picks one."
    if name in PAGING_PARAMS:
        return "Anyone."
    for since, names in USER_FILTERS:
        if name in names:
            if since == MIN_VERSION:
                return "Anyone."
            return f"Non-admins from {format_version(since)} (ignored for them before)."
    return "Admin only (ignored for non-admins)."
