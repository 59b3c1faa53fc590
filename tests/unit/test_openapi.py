"""gateway.openapi: the document says what the parser does, derived from code on both sides.

The parser's side comes from :mod:`gateway.request` itself: the parameter names its source
reads, and what :func:`parse_list_request` accepts, refuses and keeps. The document's side
comes from the document the app serves. Neither side is a list written here.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis

from gateway import request as request_module
from gateway.app import create_app
from gateway.auth import Principal
from gateway.errors import GatewayError, fault_name
from gateway.openapi import SECURITY_SCHEME, openapi_document
from gateway.params import KNOWN_PARAMS, REGEX_FILTERS, TAG_FILTERS
from gateway.request import ListRequest, parse_list_request
from gateway.settings import Settings
from gateway.versions import MAX_VERSION, MIN_VERSION, negotiate
from tests.support.callers import ADMIN, USER, grants

Json = dict[str, object]


def _document() -> Json:
    return openapi_document(create_app(Settings(api_database_url="sqlite:///unused.db")))


DOCUMENT = _document()


def _component(kind: str) -> dict[str, Any]:
    components = DOCUMENT["components"]
    assert isinstance(components, dict)
    found: dict[str, Any] = components[kind]
    return found


DOCUMENTED: dict[str, Json] = {
    name: p for name, p in _component("parameters").items() if p["in"] == "query"
}


def parse(items: list[tuple[str, str]], principal: Principal = ADMIN) -> ListRequest:
    return parse_list_request(items, principal, grants(principal), MAX_VERSION, max_limit=1000)


def _refusal(items: list[tuple[str, str]], principal: Principal) -> str:
    try:
        parse(items, principal)
    except GatewayError as exc:
        return exc.message
    return ""


def _schema(name: str) -> Json:
    schema = DOCUMENTED[name]["schema"]
    assert isinstance(schema, dict)
    return schema


def _value_schema(name: str) -> Json:
    schema = _schema(name)
    if schema.get("type") == "array":
        items = schema["items"]
        assert isinstance(items, dict)
        return items
    return schema


def samples(name: str) -> list[str]:
    """Values the document allows for ``name``: every enum member, or its boundaries."""
    schema = _value_schema(name)
    if "enum" in schema:
        enum = schema["enum"]
        assert isinstance(enum, list)
        return [str(v) for v in enum]
    kind, fmt = schema.get("type"), schema.get("format")
    if kind == "integer":
        low, high = schema.get("minimum", 0), schema.get("maximum", 10**40)
        assert isinstance(low, int)
        assert isinstance(high, int)
        return [str(low), str(high), str(low + 1)]
    assert kind == "string", name
    if fmt == "date-time":
        return ["2024-05-01T12:00:00Z", "2024-05-01T12:00:00.25+14:00", "0001-01-01T00:00:00Z"]
    if fmt == "regex":
        shortest, longest = schema["minLength"], schema["maxLength"]
        assert isinstance(shortest, int)
        assert isinstance(longest, int)
        return ["^web-[0-9]+$", "x" * shortest, "x" * longest]
    return ["web", "a,b"]


def _read_names() -> Iterator[str]:
    """Every parameter name gateway/request.py reads: ``values[...]``, ``values.get(...)``,
    ``... in values``, and ``_last``/``_last_set``/``_each``'s name argument."""
    tree = ast.parse(inspect.getsource(request_module))
    for node in ast.walk(tree):
        match node:
            case ast.Subscript(value=ast.Name(id="values"), slice=ast.Constant(value=str(n))):
                yield n
            case ast.Call(
                func=ast.Attribute(value=ast.Name(id="values"), attr="get"),
                args=[ast.Constant(value=str(n)), *_],
            ):
                yield n
            case ast.Compare(
                left=ast.Constant(value=str(n)), ops=[ast.In()], comparators=[ast.Name("values")]
            ):
                yield n
            case ast.Call(
                func=ast.Name(id="_last" | "_last_set" | "_each"),
                args=[ast.Name(id="values"), ast.Constant(value=str(n)), *_],
            ):
                yield n


def test_every_parameter_the_parser_reads_is_documented() -> None:
    read = set(_read_names()) | set(REGEX_FILTERS) | set(TAG_FILTERS)
    assert {"limit", "marker", "sort_key", "status", "changes-since", "uuid"} <= read
    assert read <= set(DOCUMENTED)


def test_every_parameter_nova_knows_is_documented() -> None:
    assert set(DOCUMENTED) == KNOWN_PARAMS


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_no_documented_value_is_rejected(name: str) -> None:
    for value in samples(name):
        parse([(name, value)])  # an admin at the newest microversion: everything applies
        # A user may get a 403 (host, node, all_tenants), never "unknown parameter".
        assert "unexpected" not in _refusal([(name, value)], USER), (name, value)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_repeats_are_documented_as_the_parser_reads_them(name: str) -> None:
    first, second = samples(name)[:2]
    base = [("all_tenants", "1"), ("sort_key", "display_name"), ("sort_key", "uuid")]
    both = parse([*base, (name, first), (name, second)])
    last = parse([*base, (name, second)])
    parameter = DOCUMENTED[name]
    if _schema(name).get("type") == "array":
        assert (parameter["style"], parameter["explode"]) == ("form", True)
        assert both != last, f"{name} is documented as repeatable but reads one value"
    else:
        assert both == last, f"{name} is documented as single but keeps every value"


def test_microversion_headers_list_the_served_range() -> None:
    parameters = _component("parameters")
    for header in ("OpenStack-API-Version", "X-OpenStack-Nova-API-Version"):
        enum = parameters[header]["schema"]["enum"]
        negotiated = {negotiate({header: value}) for value in enum}
        assert min(negotiated) == MIN_VERSION
        assert max(negotiated) == MAX_VERSION
        assert len(negotiated) == len(enum) - 1  # "latest" is the maximum again


def _operations() -> Iterator[tuple[str, Json]]:
    paths = DOCUMENT["paths"]
    assert isinstance(paths, dict)
    for path, item in paths.items():
        yield path, item["get"]


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(ref := node.get("$ref"), str):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_compute_operations_document_auth_versions_queries_and_faults() -> None:
    listings = {"/v2.1/servers", "/v2.1/servers/detail"}
    compute = [(p, op) for p, op in _operations() if p.startswith("/v2.1/")]
    assert {p for p, _ in compute} >= listings | {
        p.replace("/v2.1", "/v2.1/{project_id}") for p in listings
    }
    for path, operation in compute:
        assert operation["security"] == [{SECURITY_SCHEME: []}], path
        refs = set(_refs(operation["parameters"]))
        assert "#/components/parameters/OpenStack-API-Version" in refs, path
        queries = {f"#/components/parameters/{name}" for name in DOCUMENTED}
        is_listing = path.removeprefix("/v2.1/{project_id}").replace("/v2.1", "") in (
            "/servers",
            "/servers/detail",
        )
        assert (queries <= refs) == is_listing, path
        responses = operation["responses"]
        assert isinstance(responses, dict)
        for status in (400, 401, 403, 406, 414, 503):
            assert str(status) in responses, (path, status)
        assert ("404" in responses) == ("{" in path), path


def test_every_reference_resolves() -> None:
    for ref in set(_refs(DOCUMENT)):
        node: object = DOCUMENT
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(node, dict)
            node = node[part]


def test_fault_schemas_are_novas_shapes() -> None:
    schemas = _component("schemas")
    faults = {name: s for name, s in schemas.items() if name.startswith("Fault")}
    assert {
        "Fault400",
        "Fault401",
        "Fault403",
        "Fault404",
        "Fault406",
        "Fault414",
        "Fault503",
    } <= set(faults)
    for name, schema in faults.items():
        status = int(name.removeprefix("Fault"))
        (fault,) = schema["required"]
        assert fault == fault_name(status)
        assert schema["properties"][fault]["properties"]["code"] == {"const": status}


def test_the_document_is_valid_openapi_and_served_by_the_app() -> None:
    schemathesis.openapi.from_dict(DOCUMENT).validate()
    app = create_app(Settings(api_database_url="sqlite:///unused.db"))
    served = app.openapi()
    assert served == DOCUMENT
    assert app.openapi() is served  # built once
