"""The response bodies of the OpenAPI document (:mod:`gateway.openapi`): Nova's list,
detail, show and version shapes, and one fault shape per status a
:class:`~gateway.errors.GatewayError` can carry."""

from __future__ import annotations

from gateway.errors import GatewayError, fault_name
from gateway.params import Version
from gateway.statuses import UNKNOWN_STATUS, shown_statuses
from gateway.versions import MAX_VERSION, MIN_VERSION

__all__ = ["REF", "STRING", "Json", "format_version", "schemas"]

Json = dict[str, object]

REF = "#/components/schemas/"
STRING: Json = {"type": "string"}
NULLABLE_STRING: Json = {"type": ["string", "null"]}


def format_version(version: Version) -> str:
    """``(2, 90)`` as ``"2.90"``."""
    return f"{version[0]}.{version[1]}"


def schemas() -> Json:
    """The response bodies' schemas, by name (``components.schemas``)."""
    link: Json = {
        "type": "object",
        "required": ["rel", "href"],
        "properties": {"rel": STRING, "href": STRING},
    }
    links: Json = {"type": "array", "items": {"$ref": REF + "Link"}}
    status: Json = {"type": "string", "enum": [*shown_statuses(), UNKNOWN_STATUS]}
    summary: Json = {
        "type": "object",
        "required": ["id", "links"],
        "properties": {"id": STRING, "name": NULLABLE_STRING, "links": links, "status": status},
    }
    detail: Json = {
        "type": "object",
        "required": ["id", "links", "status"],
        "properties": {
            "id": STRING,
            "name": NULLABLE_STRING,
            "status": status,
            "links": links,
            "tenant_id": STRING,
            "user_id": STRING,
            "created": NULLABLE_STRING,
            "updated": NULLABLE_STRING,
            "hostId": STRING,
            "metadata": {"type": "object", "additionalProperties": STRING},
            "addresses": {"type": "object"},
            "flavor": {"type": "object"},
            "image": {"type": ["object", "string"]},
            "accessIPv4": STRING,
            "accessIPv6": STRING,
            "progress": {"type": ["integer", "null"]},
            "locked": {"type": "boolean"},
            "tags": {"type": "array", "items": STRING},
            "description": NULLABLE_STRING,
            "fault": {"type": "object"},
            "OS-EXT-STS:vm_state": NULLABLE_STRING,
            "OS-EXT-STS:task_state": NULLABLE_STRING,
            "OS-EXT-STS:power_state": {"type": ["integer", "null"]},
            "OS-EXT-AZ:availability_zone": STRING,
            "security_groups": {"type": "array", "items": {"type": "object"}},
        },
    }
    version: Json = {
        "type": "object",
        "required": ["id", "status", "version", "min_version", "updated", "links"],
        "properties": {
            "id": STRING,
            "status": STRING,
            "version": {"const": format_version(MAX_VERSION)},
            "min_version": {"const": format_version(MIN_VERSION)},
            "updated": STRING,
            "links": links,
        },
    }
    return {
        "Link": link,
        "ServerSummary": summary,
        "ServerDetail": detail,
        "ServerList": _page("ServerSummary"),
        "ServerDetailList": _page("ServerDetail"),
        "ServerShow": _object({"server": {"$ref": REF + "ServerDetail"}}),
        "VersionSummary": version,
        "Versions": _object(
            {"versions": {"type": "array", "items": {"$ref": REF + "VersionSummary"}}}
        ),
        "Version": _object({"version": {"$ref": REF + "VersionSummary"}}, closed=False),
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
            "servers": {"type": "array", "items": {"$ref": REF + item}},
            "servers_links": {"type": "array", "items": {"$ref": REF + "Link"}},
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
    body = _object({"code": {"const": status}, "message": STRING})
    return _object({name: body})
