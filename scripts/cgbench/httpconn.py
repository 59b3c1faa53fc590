"""A minimal keep-alive HTTP/1.1 client, and the listing's targets and bodies.

A few µs per request, so the client's cost does not blur the ratios (httpx costs ~10x
more CPU per request on the 2-core development machine).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from urllib.parse import urlsplit

import orjson

from cgbench.profiles import Who

HTTP_TIMEOUT_S = 30.0

Response = tuple[int, dict[str, str], bytes]


class HttpConn:
    """One keep-alive connection, opened on the first request and after a close."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(
        self, target: str, token: str | None = None, headers: Mapping[str, str] | None = None
    ) -> Response:
        """``GET target`` with ``X-Auth-Token: token`` and ``headers`` (e.g. a trusted
        caller's ``X-Project-Id``/``X-Roles``)."""
        async with asyncio.timeout(HTTP_TIMEOUT_S):
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            assert self._reader is not None
            auth = f"X-Auth-Token: {token}\r\n" if token else ""
            auth += "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
            self._writer.write(
                f"GET {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{auth}"
                "Accept: application/json\r\n\r\n".encode()
            )
            head = await self._reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            got: dict[str, str] = {}
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    got[name.strip().lower()] = value.strip()
            if "content-length" in got:
                body = await self._reader.readexactly(int(got["content-length"]))
            elif got.get("transfer-encoding", "").lower() == "chunked":
                body = await self._chunked()
            else:
                body = await self._reader.read()
                self.close()
            if got.get("connection", "").lower() == "close":
                self.close()
            return status, got, body

    async def _chunked(self) -> bytes:
        assert self._reader is not None
        parts: list[bytes] = []
        while True:
            size = int((await self._reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                await self._reader.readline()
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readline()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


def ok_response(status: int, headers: dict[str, str]) -> bool:
    """A complete page: 200 and no cell missing from it."""
    return status == 200 and "x-cells-unavailable" not in headers


def first_target(who: Who, limit: int, extra: str = "") -> str:
    """The first page of ``GET /v2.1/servers/detail`` as ``who`` (admin: all tenants)."""
    query = f"limit={limit}" + ("&all_tenants=1" if who == "admin" else "")
    return f"/v2.1/servers/detail?{query}{extra}"


def next_target(body: bytes) -> str | None:
    """The path+query of the page's ``next`` link (read from the body's tail)."""
    idx = body.rfind(b'"servers_links":')
    if idx < 0:
        return None
    links = orjson.loads(body[idx + len(b'"servers_links":') : -1])
    for link in links:
        if link.get("rel") == "next":
            parts = urlsplit(link["href"])
            return f"{parts.path}?{parts.query}"
    return None


def body_ids(body: bytes) -> list[str]:
    return [str(s["id"]) for s in orjson.loads(body)["servers"]]
