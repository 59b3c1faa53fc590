"""The OpenAPI document, completed from the tables that parse and answer requests.

FastAPI documents what the route signatures declare: paths, path parameters, summaries.
The listing reads its query string itself (:mod:`gateway.request`, driven by the tables of
:mod:`gateway.params`), authenticates from headers and answers Nova-shaped faults, so
this module adds, from those same tables: every query parameter (type, repeats, enums,
bounds, who may use it from which microversion), the auth and microversion headers, the
response headers, and the response bodies (Nova's list, detail and fault shapes).
Operations are recognised by their path at run time, so a route added later (such as the
show route) is described as soon as it exists.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from cells.order import Direction
from gateway.errors import GatewayError, fault_name
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
    MAX_URL_BYTES,
    PAGING_PARAMS,
    POWER_STATE_RANGE,
    REGEX_FILTERS,
    REPEATABLE_PARAMS,
    SORT_KEYS_SINCE,
    STRICT_QUERY_SINCE,
    TAG_FILTERS,
    TIMESTAMP_PARAMS,
    TRUE_VALUES,
    UNSUPPORTED_FILTERS,
    USER_FILTERS,
    VALID_SORT_KEYS,
    Version,
)
from gateway.states import UNKNOWN_STATUS, shown_statuses
from gateway.versions import MAX_VERSION, MIN_VERSION, is_compute_path

__all__ = ["SECURITY_SCHEME", "install_openapi", "openapi_document", "query_parameters"]

Json = dict[str, object]

SECURITY_SCHEME = "keystoneToken"
_LIST_PATH = re.compile(r"/v2\.1(/\{[^}/]+\})?/servers(/detail)?")
_SHOW_PATH = re.compile(r"/v2\.1(/\{[^}/]+\})?/servers/\{[^}/]+\}")
_REF = "#/components/schemas/"
_PATH_PARAMETERS = {
    "project_id": "The caller's own project (Nova's project URL form); any other is a 400."
}
_SERVER_ID = "A server's id (a uuid, any case); any other is a 404."
_STRING: Json = {"type": "string"}
_NULLABLE_STRING: Json = {"type": ["string", "null"]}


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and so ``/openapi.json``) serve :func:`openapi_document`."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def openapi_document(app: FastAPI) -> Json:
    """FastAPI's document for ``app``'s routes, with cellgate's parameters and responses."""
    document: Json = get_openapi(
        title=app.title, version=app.version, summary=app.summary, routes=app.routes
    )
    paths = document["paths"]
    assert isinstance(paths, dict)
    for path, item in paths.items():
        for operation in item.values():
            _complete(path, operation)
    document["components"] = {
        "schemas": _schemas(),
        "parameters": {str(p["name"]): p for p in [*_version_headers(), *query_parameters()]},
        "headers": _headers(),
        "securitySchemes": {
            SECURITY_SCHEME: {
                "type": "apiKey",
                "in": "header",
                "name": "X-Auth-Token",
                "description": "A Keystone token, or a signed JWT (auth_mode=jwt); with "
                "auth_mode=noauth `user:project`, where the project `admin` is an "
                "administrator. auth_mode=trusted-headers reads X-Project-Id, X-User-Id "
                "and X-Roles instead.",
            }
        },
    }
    return document


def _complete(path: str, operation: Json) -> None:
    """Replace FastAPI's guessed responses (and its 422, which never happens)."""
    listing = _LIST_PATH.fullmatch(path)
    responses: dict[str, Json]
    if listing or _SHOW_PATH.fullmatch(path):
        found = operation.get("parameters", [])
        assert isinstance(found, list)
        parameters = [_path_parameter(p) for p in found]
        # A path segment can be anything, so routing can miss: 404.
        statuses = [400, 401, 403, 406, 414, 500, 503] + ([404] if parameters else [])
        parameters += [_ref("parameters", p["name"]) for p in _version_headers()]
        if listing:
            parameters += [_ref("parameters", p["name"]) for p in query_parameters()]
            body = "ServerDetailList" if listing.group(2) else "ServerList"
            operation["description"] = _listing_description()
            ok = _json(body, "Servers, in order; `servers_links` names the next page.")
        else:
            ok = _json("ServerShow", "The server, as in the detail list.")
        ok["headers"] = {"X-Cells-Unavailable": _ref("headers", "X-Cells-Unavailable")}
        responses = {"200": ok, **{str(s): _fault(s) for s in sorted(statuses)}}
        operation.update(security=[{SECURITY_SCHEME: []}], parameters=parameters)
    else:
        responses = _meta_responses(path)
    for status, response in responses.items():
        headers = response.get("headers", {})
        assert isinstance(headers, dict)
        response["headers"] = {**headers, **_response_headers(path, int(status))}
    operation["responses"] = responses


def _path_parameter(parameter: object) -> Json:
    assert isinstance(parameter, dict)
    schema = parameter["schema"]
    assert isinstance(schema, dict)
    return {
        **parameter,
        "schema": {**schema, "minLength": 1},
        "description": _PATH_PARAMETERS.get(parameter["name"], _SERVER_ID),
    }


def _meta_responses(path: str) -> dict[str, Json]:
    ok: Json
    if path == "/":
        ok = _json("Versions", "Every API version served (only v2.1).")
    elif path == "/v2.1":
        ok = _json("Version", "The v2.1 version and its microversion range.")
    elif path in ("/healthz", "/readyz"):
        ok = _json("Health", "Healthy.", "application/health+json")
    elif path == "/metrics":
        ok = {"description": "Prometheus text format.", "content": {"text/plain": {"schema": {}}}}
    else:
        ok = {"description": "OK"}
    responses = {"200": ok, "414": _fault(414)}
    if path == "/readyz":
        responses["503"] = _json(
            "Health", "Not ready: no API DB or no cell.", "application/health+json"
        )
    return responses


def _ref(kind: str, name: object) -> Json:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json(schema: str, description: str, media: str = "application/json") -> Json:
    return {"description": description, "content": {media: {"schema": {"$ref": _REF + schema}}}}


def _fault(status: int) -> Json:
    description = f"Nova's `{fault_name(status)}` fault."
    if status == 414:
        description += (
            f" The path and query string exceed {MAX_URL_BYTES} bytes (past 64 KiB the "
            "HTTP parser answers, without the request id and microversion headers)."
        )
    return _json(f"Fault{status}", description)


def _response_headers(path: str, status: int) -> Json:
    """The headers every response carries, and the ones a status adds."""
    if status == 414:  # past 64 KiB the HTTP parser answers before the app: no headers
        return {}
    names = ["X-OpenStack-Request-Id", "X-Compute-Request-Id"]
    if is_compute_path(path):
        names += ["OpenStack-API-Version", "X-OpenStack-Nova-API-Version", "Vary"]
    if status == 401:
        names.append("WWW-Authenticate")
    if status == 503 and path != "/readyz":
        names.append("Retry-After")
    return {name: _ref("headers", name) for name in names}


def _headers() -> Json:
    request_id = _required(r"^req-[0-9a-f-]{36}$", "The request id, as in the gateway's log.")
    number = r"[0-9]+\.[0-9]+"
    return {
        "X-OpenStack-Request-Id": request_id,
        "X-Compute-Request-Id": request_id,
        "OpenStack-API-Version": _required(f"^compute {number}$", "The microversion used."),
        "X-OpenStack-Nova-API-Version": _required(f"^{number}$", "The microversion used."),
        "Vary": _required("OpenStack-API-Version", "Responses vary by microversion."),
        "WWW-Authenticate": _required("^Keystone uri=", "Where to authenticate."),
        "Retry-After": {
            "description": "Seconds to wait before retrying.",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        },
        "X-Cells-Unavailable": {
            "description": "Cells that did not answer: their servers are missing or stubs.",
            "schema": _STRING,
        },
    }


def _required(pattern: str, description: str) -> Json:
    return {
        "description": description,
        "required": True,
        "schema": {"type": "string", "pattern": pattern},
    }


def _version_headers() -> list[Json]:
    versions = [f"{MIN_VERSION[0]}.{minor}" for minor in range(MIN_VERSION[1], MAX_VERSION[1] + 1)]
    assert MIN_VERSION[0] == MAX_VERSION[0]  # one major version: the range is its minors
    described = f"A compute microversion; none means {_format(MIN_VERSION)}, out of range is a 406."
    return [
        {
            "name": "OpenStack-API-Version",
            "in": "header",
            "description": described,
            "schema": {"type": "string", "enum": [f"compute {v}" for v in [*versions, "latest"]]},
        },
        {
            "name": "X-OpenStack-Nova-API-Version",
            "in": "header",
            "description": f"The legacy spelling. {described}",
            "schema": {"type": "string", "enum": [*versions, "latest"]},
        },
    ]


def _listing_description() -> str:
    return (
        f"From {_format(STRICT_QUERY_SINCE)} a query parameter not listed here is a 400; "
        "before, it is ignored. Filters Nova has that this gateway refuses (400): "
        f"{', '.join(sorted(UNSUPPORTED_FILTERS))}."
    )


def query_parameters() -> list[Json]:
    """Every query parameter of the listing, from :mod:`gateway.params` (the filters Nova
    has that the gateway refuses, ``UNSUPPORTED_FILTERS``, are named in the operation)."""
    return [_query_parameter(name) for name in sorted(KNOWN_PARAMS - UNSUPPORTED_FILTERS)]


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
        return _STRING, "The id of the last server of the previous page."
    if name == "sort_key":
        keys = VALID_SORT_KEYS.union(*(names for _, names in SORT_KEYS_SINCE))
        since = "; ".join(f"{', '.join(sorted(n))} from {_format(v)}" for v, n in SORT_KEYS_SINCE)
        return {"type": "string", "enum": sorted(keys)}, (
            f"At most {MAX_SORT_KEYS}; `uuid asc` always ends the order. {since}; "
            f"{', '.join(sorted(ADMIN_SORT_KEYS))} are admin-only (403). Before "
            f"{_format(STRICT_QUERY_SINCE)} these are accepted and ignored: "
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
        return {"type": "string", "format": "regex", "maxLength": MAX_REGEX_LENGTH}, (
            f"An unanchored regular expression on {REGEX_FILTERS[name]}."
        )
    if name in TAG_FILTERS:
        return _STRING, (
            f"Comma-separated tags: at most {MAX_TAGS}, each at most {MAX_TAG_LENGTH} characters."
        )
    if name in ("project_id", "tenant_id"):
        return _STRING, "With all_tenants, one project's servers (project_id wins)."
    return _STRING, "Any of the values, exactly." if name in REPEATABLE_PARAMS else "Exact match."


def _who(name: str) -> str:
    if name == "all_tenants":
        return "Admin only (403 for others); project_id or tenant_id then picks one."
    if name in PAGING_PARAMS:
        return "Anyone."
    for since, names in USER_FILTERS:
        if name in names:
            if since == MIN_VERSION:
                return "Anyone."
            return f"Non-admins from {_format(since)} (ignored for them before)."
    return "Admin only (ignored for non-admins)."


def _format(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


def _schemas() -> Json:
    link: Json = {
        "type": "object",
        "required": ["rel", "href"],
        "properties": {"rel": _STRING, "href": _STRING},
    }
    links: Json = {"type": "array", "items": {"$ref": _REF + "Link"}}
    status: Json = {"type": "string", "enum": [*shown_statuses(), UNKNOWN_STATUS]}
    summary: Json = {
        "type": "object",
        "required": ["id", "links"],
        "properties": {"id": _STRING, "name": _NULLABLE_STRING, "links": links, "status": status},
    }
    detail: Json = {
        "type": "object",
        "required": ["id", "links", "status"],
        "properties": {
            "id": _STRING,
            "name": _NULLABLE_STRING,
            "status": status,
            "links": links,
            "tenant_id": _STRING,
            "user_id": _STRING,
            "created": _NULLABLE_STRING,
            "updated": _NULLABLE_STRING,
            "hostId": _STRING,
            "metadata": {"type": "object", "additionalProperties": _STRING},
            "addresses": {"type": "object"},
            "flavor": {"type": "object"},
            "image": {"type": ["object", "string"]},
            "accessIPv4": _STRING,
            "accessIPv6": _STRING,
            "progress": {"type": "integer"},
            "locked": {"type": "boolean"},
            "tags": {"type": "array", "items": _STRING},
            "description": _NULLABLE_STRING,
            "fault": {"type": "object"},
            "OS-EXT-STS:vm_state": _NULLABLE_STRING,
            "OS-EXT-STS:task_state": _NULLABLE_STRING,
            "OS-EXT-STS:power_state": {"type": ["integer", "null"]},
            "OS-EXT-AZ:availability_zone": _STRING,
            "security_groups": {"type": "array", "items": {"type": "object"}},
        },
    }
    version: Json = {
        "type": "object",
        "required": ["id", "status", "version", "min_version", "updated", "links"],
        "properties": {
            "id": _STRING,
            "status": _STRING,
            "version": {"const": _format(MAX_VERSION)},
            "min_version": {"const": _format(MIN_VERSION)},
            "updated": _STRING,
            "links": links,
        },
    }
    return {
        "Link": link,
        "ServerSummary": summary,
        "ServerDetail": detail,
        "ServerList": _page("ServerSummary"),
        "ServerDetailList": _page("ServerDetail"),
        "ServerShow": _object({"server": {"$ref": _REF + "ServerDetail"}}),
        "VersionSummary": version,
        "Versions": _object(
            {"versions": {"type": "array", "items": {"$ref": _REF + "VersionSummary"}}}
        ),
        "Version": _object({"version": {"$ref": _REF + "VersionSummary"}}, closed=False),
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": {"enum": ["pass", "warn", "fail"]},
                "checks": {"type": "object"},
            },
        },
        **{f"Fault{status}": _fault_schema(status) for status in _fault_statuses()},
    }


def _page(item: str) -> Json:
    return _object(
        {
            "servers": {"type": "array", "items": {"$ref": _REF + item}},
            "servers_links": {"type": "array", "items": {"$ref": _REF + "Link"}},
        },
        required=["servers"],
    )


def _object(properties: Json, *, required: list[str] | None = None, closed: bool = True) -> Json:
    schema: Json = {
        "type": "object",
        "required": required if required is not None else list(properties),
        "properties": properties,
    }
    if closed:  # Nova's response schemas allow no other key
        schema["additionalProperties"] = False
    return schema


def _fault_statuses() -> list[int]:
    """Every status a :class:`GatewayError` can carry."""
    found = {GatewayError.status}
    pending = [GatewayError]
    while pending:
        for sub in pending.pop().__subclasses__():
            found.add(sub.status)
            pending.append(sub)
    return sorted(found)


def _fault_schema(status: int) -> Json:
    name = fault_name(status)
    body = _object({"code": {"const": status}, "message": _STRING})
    return _object({name: body})
