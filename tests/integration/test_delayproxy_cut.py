"""``scripts/delayproxy.py``'s cut (``SIGHUP``; ``scripts/outage CELL cut``): every open
connection is dropped mid-stream, and the proxy goes on accepting new ones."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.dbservers import DelayProxy

pytestmark = pytest.mark.integration


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


async def test_cut_drops_open_connections_and_keeps_accepting() -> None:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = DelayProxy("127.0.0.1", port).start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"before")
        assert await reader.readexactly(6) == b"before"
        proxy.cut()
        async with asyncio.timeout(5):
            try:
                rest = await reader.read(1024)
            except ConnectionResetError:
                rest = b""
        assert rest == b""  # dropped: EOF or a reset, never an answer
        writer.close()
        reader2, writer2 = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer2.write(b"after")
        assert await reader2.readexactly(5) == b"after"
        writer2.close()
        assert proxy.cuts == 1
    finally:
        proxy.close()
        server.close()
        await server.wait_closed()
