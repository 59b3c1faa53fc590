"""Version discovery documents and compute microversion negotiation.

Clients (keystoneauth, and so openstacksdk, novaclient and the CLI) read ``GET /`` or
``GET /v2.1`` to learn the microversion range: ``min_version`` and ``version`` (the
maximum), with a ``self`` link and a status. Only v2.1 is served; v2.0 is not listed.

A request picks a microversion with ``OpenStack-API-Version: compute X.Y`` or the legacy
``X-OpenStack-Nova-API-Version: X.Y`` (the standard header wins). No header means 2.1,
``latest`` means :data:`MAX_VERSION`.

Every response under ``/v2.1`` names its microversion (:class:`VersionHeadersMiddleware`),
errors included, as Nova's ``Fault`` does: the negotiated version; for a 406 the requested
one (Nova sets the request's version before its range check fails, and its fault echoes
it); for a malformed header, where Nova sends none, the default 2.1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

import microversion_parse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.params import Version

__all__ = [
    "MAX_VERSION",
    "MIN_VERSION",
    "VersionHeadersMiddleware",
    "VersionNotAcceptable",
    "echoed_version",
    "is_compute_path",
    "negotiate",
    "version_document",
    "version_headers",
    "versions_document",
]

MIN_VERSION: Final[Version] = (2, 1)
MAX_VERSION: Final[Version] = (2, 104)

_UPDATED: Final = "2013-07-23T11:33:21Z"
# Nova accepts only canonical numbers: "2.01" and "02.1" are malformed, not 2.1.
_VERSION_PATTERN: Final = re.compile(r"[1-9][0-9]*\.(0|[1-9][0-9]*)")
_LEGACY_HEADER: Final = "x-openstack-nova-api-version"


class VersionNotAcceptable(Exception):
    """A well-formed microversion outside [:data:`MIN_VERSION`, :data:`MAX_VERSION`] (406)."""

    def __init__(self, version: Version) -> None:
        self.version = version
        self.requested = _format(version)
        super().__init__(
            f"Version {self.requested} is not supported by the API. "
            f"Minimum is {_format(MIN_VERSION)} and maximum is {_format(MAX_VERSION)}."
        )


def negotiate(headers: Mapping[str, str]) -> Version:
    """The microversion a request asks for.

    Raises :class:`ValueError` for a malformed value (400) and
    :class:`VersionNotAcceptable` for one out of range (406).
    """
    requested = microversion_parse.get_version(
        dict(headers.items()), service_type="compute", legacy_headers=[_LEGACY_HEADER]
    )
    if requested is None:
        return MIN_VERSION
    if requested == "latest":
        return MAX_VERSION
    if not _VERSION_PATTERN.fullmatch(requested):
        raise _malformed(requested)
    try:
        parsed = microversion_parse.parse_version_string(requested)
    except TypeError as exc:  # the library signals a bad string with TypeError
        raise _malformed(requested) from exc
    version = (int(parsed.major), int(parsed.minor))
    if not MIN_VERSION <= version <= MAX_VERSION:
        raise VersionNotAcceptable(version)
    return version


def echoed_version(headers: Mapping[str, str]) -> Version:
    """The microversion a response to these request headers names, whatever its status."""
    try:
        return negotiate(headers)
    except VersionNotAcceptable as exc:
        return exc.version
    except ValueError:
        return MIN_VERSION


def is_compute_path(path: str) -> bool:
    """Whether ``path`` is under the compute API (``/v2.1``), where responses are versioned."""
    return path == "/v2.1" or path.startswith("/v2.1/")


def version_headers(version: Version) -> dict[str, str]:
    """Response headers echoing the negotiated microversion in both spellings."""
    text = _format(version)
    return {
        "OpenStack-API-Version": f"compute {text}",
        "X-OpenStack-Nova-API-Version": text,
        "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version",
    }


class VersionHeadersMiddleware:
    """Add the version headers to every compute API response that lacks them (errors,
    404s and 405s from routing, the 500 of an unexpected error)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_compute_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        version = echoed_version(Headers(scope=scope))
        extra = [(k.lower().encode(), v.encode()) for k, v in version_headers(version).items()]

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if all(name.lower() != b"openstack-api-version" for name, _ in headers):
                    message["headers"] = headers + extra
            await send(message)

        await self.app(scope, receive, send_with_version)


def versions_document(base_url: str) -> dict[str, object]:
    """The ``GET /`` body: every served API version (only v2.1)."""
    return {"versions": [{**_summary(), "links": [_self_link(base_url)]}]}


def version_document(base_url: str) -> dict[str, object]:
    """The ``GET /v2.1`` body: the v2.1 version with its media types."""
    return {
        "version": {
            **_summary(),
            "links": [
                _self_link(base_url),
                {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
            ],
            "media-types": [
                {
                    "base": "application/json",
                    "type": "application/vnd.openstack.compute+json;version=2.1",
                }
            ],
        }
    }


def _summary() -> dict[str, object]:
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": _format(MAX_VERSION),
        "min_version": _format(MIN_VERSION),
        "updated": _UPDATED,
    }


def _self_link(base_url: str) -> dict[str, str]:
    return {"rel": "self", "href": f"{base_url.rstrip('/')}/v2.1/"}


def _malformed(requested: str) -> ValueError:
    return ValueError(
        f"API Version String {requested} is of invalid format. Must be of format MajorNum.MinorNum."
    )


def _format(version: Version) -> str:
    return f"{version[0]}.{version[1]}"
