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

from gateway.errors import fault_name
from gateway.openapiquery import listing_description, query_parameters
from gateway.openapischemas import REF, STRING, Json, format_version, schemas
from gateway.params import (
    MAX_URL_BYTES,
)
from gateway.versions import MAX_VERSION, MIN_VERSION, is_compute_path

__all__ = ["SECURITY_SCHEME", "install_openapi", "openapi_document"]

SECURITY_SCHEME = "keystoneToken"
_LIST_PATH = re.compile(r"/v2\.1(/\{[^}/]+\})?/servers(/detail)?")
_SHOW_PATH = re.compile(r"/v2\.1(/\{[^}/]+\})?/servers/\{[^}/]+\}")
_PATH_PARAMETERS = {
    "project_id": "The caller's own project (Nova's project URL form); any other is a 400."
}
_SERVER_ID = "A server's id (a uuid, any case); any other is a 404."


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and so ``/openapi.json``) serve :func:`openapi_document`."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = openapi_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to replace its schema generator


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
        "schemas": schemas(),
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
            operation["description"] = listing_description()
            ok = _json(body, "Servers, in order; `servers_links` names the next page.")
        else:
            ok = _json("ServerShow", "The server, as in the detail list.")
        ok["headers"] = {
            name: _ref("headers", name) for name in ("X-Cells-Unavailable", "X-Neutron-Unavailable")
        }
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
    return {"description": description, "content": {media: {"schema": {"$ref": REF + schema}}}}


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
            "schema": STRING,
        },
        "X-Neutron-Unavailable": {
            "description": "Neutron did not answer: what was left out (security_groups).",
            "schema": STRING,
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
    described = (
        f"A compute microversion; none means {format_version(MIN_VERSION)}, out of range is a 406."
    )
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
