#!/usr/bin/env python3
"""A tiny loopback TCP proxy that can delay client-to-server traffic (stdlib only).

``python3 scripts/delayproxy.py --listen 127.0.0.1:P --target 127.0.0.1:Q --delay-file PATH``

Bytes are forwarded both ways. Before each chunk read from a client is written to the
target, the proxy sleeps for the current delay. From the command line the delay is the
number of seconds in ``PATH`` (a float; a missing, empty or unparsable file means 0),
re-read at most every 100 ms, so ``echo 0.2 > PATH`` slows a running cell down and
``echo 0 > PATH`` restores it without restarting anything. ``scripts/devstack`` puts one
proxy in front of every cell; ``scripts/outage CELL slow`` writes the file. ``SIGHUP``
drops every open connection (:meth:`DelayProxy.cut`; ``scripts/outage CELL cut``).

The proxy itself is :class:`tcpproxy.DelayProxy` (``scripts/tcpproxy.py``), which the
integration tests and the benchmark also run in-process; this module is its command line.
Only loopback addresses are accepted to listen on: this is a test tool, not a relay.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from tcpproxy import DelayProxy, is_loopback, select_loop

__all__ = ["main", "parse_hostport", "serve"]

log = logging.getLogger("delayproxy")


def parse_hostport(value: str, *, loopback_only: bool) -> tuple[str, int]:
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    port = int(port_text)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"port out of range in {value!r}")
    host = host.strip("[]")
    if loopback_only and not is_loopback(host):
        raise argparse.ArgumentTypeError(f"refusing to listen on non-loopback {host!r}")
    return host, port


async def serve(
    listen: tuple[str, int],
    target: tuple[str, int],
    delay_file: str | None,
    delay_s: float = 0.0,
    both_ways: bool = False,
) -> None:
    """The command line's proxy: until SIGTERM or SIGINT; SIGUSR1 freezes it (nothing is
    forwarded, as from a hung host), SIGUSR2 thaws it, SIGHUP cuts every open connection."""
    proxy = DelayProxy(
        *target,
        delay_s,
        listen_host=listen[0],
        listen_port=listen[1],
        delay_file=delay_file,
        both_ways=both_ways,
    )
    await proxy.open()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, proxy.freeze)
    loop.add_signal_handler(signal.SIGUSR2, proxy.thaw)
    loop.add_signal_handler(signal.SIGHUP, proxy.cut)
    log.info(
        "delayproxy %s:%s -> %s:%s (delay %s%s, pid %s)",
        *listen,
        *target,
        f"file {delay_file}" if delay_file else f"{delay_s:g} s",
        " both ways" if both_ways else "",
        os.getpid(),
    )
    try:
        await stop.wait()
    finally:
        await proxy.aclose()
    log.info("delayproxy stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
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
    delay = parser.add_mutually_exclusive_group(required=True)
    delay.add_argument("--delay-file", help="file holding the delay in seconds (re-read)")
    delay.add_argument("--delay", type=float, help="a fixed delay in seconds")
    parser.add_argument(
        "--both-ways", action="store_true", help="delay server-to-client chunks too"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        # select(): a timeout in microseconds, for sub-millisecond delays (see DelayProxy).
        with asyncio.Runner(loop_factory=select_loop) as runner:
            runner.run(serve(args.listen, args.target, args.delay_file, args.delay or 0.0,
                             args.both_ways))  # fmt: skip
    except OSError as exc:
        print(f"delayproxy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
