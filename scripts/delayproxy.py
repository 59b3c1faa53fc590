#!/usr/bin/env python3
"""A tiny loopback TCP proxy that can delay client-to-server traffic (stdlib only).

``python3 scripts/delayproxy.py --listen 127.0.0.1:P --target 127.0.0.1:Q --delay-file PATH``

Bytes are forwarded both ways. Before each chunk read from a client is written to the
target, the proxy sleeps for the number of seconds in ``PATH`` (a float; a missing, empty or
unparsable file means 0). The file is re-read at most every 100 ms, so ``echo 0.2 > PATH``
slows a running cell down and ``echo 0 > PATH`` restores it without restarting anything.
``scripts/devstack`` puts one proxy in front of every cell; ``scripts/outage CELL slow``
writes the file.

Only loopback addresses are accepted for ``--listen``: this is a test tool, not a relay.
When either side closes, the other side is half-closed (EOF forwarded) and both are closed
once both directions are done. If the target refuses the connection, the client is closed
at once (the client sees an immediate EOF, much like a refused connection).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import sys
import time

CHUNK = 64 * 1024
REREAD_S = 0.1
CONNECT_TIMEOUT_S = 10.0

log = logging.getLogger("delayproxy")


class DelaySource:
    """The current delay from a file, cached for :data:`REREAD_S` seconds."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._value = 0.0
        self._read_at = float("-inf")

    def get(self) -> float:
        now = time.monotonic()
        if now - self._read_at >= REREAD_S:
            self._read_at = now
            self._value = self._read()
        return self._value

    def _read(self) -> float:
        try:
            with open(self._path, encoding="utf-8") as handle:
                text = handle.read().strip()
        except OSError:
            return 0.0
        if not text:
            return 0.0
        try:
            value = float(text)
        except ValueError:
            log.warning("ignoring unparsable delay %r in %s", text, self._path)
            return 0.0
        return value if value > 0 else 0.0


def parse_hostport(value: str, *, loopback_only: bool) -> tuple[str, int]:
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    port = int(port_text)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port out of range in {value!r}")
    host = host.strip("[]")
    if loopback_only:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise argparse.ArgumentTypeError(f"refusing to listen on non-loopback {host!r}")
    return host, port


async def pipe(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    delay: DelaySource | None,
) -> None:
    """Copy ``reader`` to ``writer`` until EOF, sleeping ``delay`` before each chunk."""
    try:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                break
            if delay is not None:
                seconds = delay.get()
                if seconds > 0:
                    await asyncio.sleep(seconds)
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                writer.write_eof()
    except (OSError, asyncio.IncompleteReadError):
        # A reset on either side ends this direction; the caller closes both sockets.
        pass


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, asyncio.CancelledError):
        await writer.wait_closed()


class Proxy:
    def __init__(self, target: tuple[str, int], delay: DelaySource) -> None:
        self._target = target
        self._delay = delay
        self._tasks: set[asyncio.Task[None]] = set()

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    server_r, server_w = await asyncio.open_connection(*self._target)
            except (OSError, TimeoutError) as exc:
                log.info("target %s:%s unreachable: %s", *self._target, exc)
                await close(client_w)
                return
            try:
                await asyncio.gather(
                    pipe(client_r, server_w, self._delay),
                    pipe(server_r, client_w, None),
                )
            finally:
                await close(server_w)
                await close(client_w)
        finally:
            self._tasks.discard(task)

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def serve(listen: tuple[str, int], target: tuple[str, int], delay_file: str) -> None:
    proxy = Proxy(target, DelaySource(delay_file))
    server = await asyncio.start_server(proxy.handle, listen[0], listen[1], backlog=512)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info(
        "delayproxy %s:%s -> %s:%s (delay file %s, pid %s)",
        *listen,
        *target,
        delay_file,
        os.getpid(),
    )
    async with server:
        await stop.wait()
        server.close()
        await proxy.shutdown()
    log.info("delayproxy stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--listen",
        required=True,
        type=lambda v: parse_hostport(v, loopback_only=True),
        help="loopback HOST:PORT to accept on",
    )
    parser.add_argument(
        "--target",
        required=True,
        type=lambda v: parse_hostport(v, loopback_only=False),
        help="HOST:PORT to forward to",
    )
    parser.add_argument("--delay-file", required=True, help="file holding the delay in seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        asyncio.run(serve(args.listen, args.target, args.delay_file))
    except OSError as exc:
        print(f"delayproxy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
