"""A loopback TCP proxy that can delay client-to-server traffic (stdlib only): the
mechanism behind ``scripts/delayproxy.py`` (its command line).

:class:`DelayProxy`'s delay is :attr:`DelayProxy.delay_s` (settable at any time) unless it
was given a delay file (:class:`DelaySource`: the number of seconds in a file, a missing,
empty or unparsable file meaning 0, re-read at most every :data:`REREAD_S` seconds). It
runs on the caller's event loop (``await proxy.open()`` ... ``await proxy.aclose()``) or on
its own loop in a thread (``proxy.start()`` ... ``proxy.close()``), which keeps forwarding
while the caller's loop is busy; the integration tests and the benchmark use it that way.

Only loopback addresses are accepted to listen on: this is a test tool, not a relay.
When either side closes, the other side is half-closed (EOF forwarded) and both are closed
once both directions are done. If the target refuses the connection, the client is closed
at once (the client sees an immediate EOF, much like a refused connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import selectors
import threading
import time
from collections.abc import Callable

__all__ = ["REREAD_S", "DelayProxy", "DelaySource", "is_loopback", "select_loop"]

CHUNK = 64 * 1024
REREAD_S = 0.1
CONNECT_TIMEOUT_S = 10.0
THREAD_START_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 2.0

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


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


class DelayProxy:
    """A loopback TCP proxy to ``target_host:target_port`` that holds each client→server
    chunk (and with ``both_ways`` each server→client chunk too) for the current delay
    before forwarding it (:attr:`chunks_delayed` counts them).

    The delay is a delay line, not a pause: reading goes on while earlier chunks wait, so a
    chunk is late by the delay once, as on a longer wire, however many follow it. In its
    own thread (:meth:`start`) the proxy's event loop waits with ``select()``, whose
    timeout has microseconds (``epoll`` rounds up to a millisecond): a 0.25 ms delay is
    0.25 ms, not 1. ``listen_port=0`` picks a free port; :attr:`port` is the one listened on
    once open.
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        delay_s: float = 0.0,
        *,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        delay_file: str | None = None,
        both_ways: bool = False,
    ) -> None:
        if not is_loopback(listen_host):
            raise ValueError(f"refusing to listen on non-loopback {listen_host!r}")
        self.target = (target_host, target_port)
        self.delay_s = delay_s
        self.listen = (listen_host, listen_port)
        self.port = listen_port
        self.chunks_delayed = 0
        self.both_ways = both_ways
        self._file = DelaySource(delay_file) if delay_file is not None else None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._flowing: asyncio.Event | None = None  # cleared while frozen
        self.frozen = False
        self.cuts = 0

    def current_delay_s(self) -> float:
        """The delay file's value when there is one, else :attr:`delay_s`."""
        return self._file.get() if self._file is not None else self.delay_s

    # -- on the caller's event loop ---------------------------------------------------

    async def open(self) -> None:
        """Start listening (on the running loop)."""
        self._flowing = asyncio.Event()
        if not self.frozen:
            self._flowing.set()
        self._server = await asyncio.start_server(self._handle, *self.listen, backlog=512)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def aclose(self) -> None:
        """Stop listening and drop every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        # Closing the sockets ends every pipe (EOF or a reset), so the handlers finish on
        # their own; cancelling them instead makes Python 3.11's start_server callback log
        # the CancelledError. Cancel only what is still stuck after CLOSE_TIMEOUT_S.
        for writer in list(self._writers):
            writer.close()
        if self._tasks:
            _, stuck = await asyncio.wait(set(self._tasks), timeout=CLOSE_TIMEOUT_S)
            for task in stuck:
                task.cancel()
            await asyncio.gather(*stuck, return_exceptions=True)
        await server.wait_closed()

    # -- on its own event loop, in a thread ------------------------------------------

    def start(self) -> DelayProxy:
        """Open the proxy on a new event loop in a daemon thread; returns ``self``."""
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = self._loop = select_loop()  # a timeout in microseconds: see the class

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.open())
            except Exception as exc:  # reported to start()'s caller
                failure.append(exc)
            ready.set()
            if not failure:
                loop.run_forever()
                loop.run_until_complete(self.aclose())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="delay-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(THREAD_START_TIMEOUT_S):
            raise RuntimeError("delay proxy did not start")
        if failure:
            raise RuntimeError("delay proxy failed to start") from failure[0]
        return self

    def close(self) -> None:
        """Stop the thread started by :meth:`start` (closing every connection)."""
        thread, loop = self._thread, self._loop
        if thread is not None and loop is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(THREAD_START_TIMEOUT_S)

    def freeze(self) -> None:
        """Stop forwarding, both ways, on every connection, as a hung host (SIGSTOP, a
        dead hypervisor) would: connections are still accepted, nothing answers."""
        self.frozen = True
        self._on_loop(lambda flowing: flowing.clear())

    def thaw(self) -> None:
        """Forward again what was held since :meth:`freeze`."""
        self.frozen = False
        self._on_loop(lambda flowing: flowing.set())

    def cut(self) -> None:
        """Drop every open connection at once (both sides aborted: a reset), as a failing
        network or a killed backend would, mid-response for the queries in flight; new
        connections are accepted and forwarded as before."""
        loop = self._loop
        if loop is not None and self._thread is not None and self._thread.is_alive():
            loop.call_soon_threadsafe(self._abort_all)
        else:
            self._abort_all()

    def _abort_all(self) -> None:
        self.cuts += 1
        for writer in list(self._writers):
            writer.transport.abort()

    def _on_loop(self, change: Callable[[asyncio.Event], None]) -> None:
        flowing, loop = self._flowing, self._loop
        if flowing is None:
            return  # not open yet: open() reads self.frozen
        if loop is not None and self._thread is not None and self._thread.is_alive():
            loop.call_soon_threadsafe(change, flowing)
        else:
            change(flowing)

    # -- forwarding ------------------------------------------------------------------

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delayed: bool
    ) -> None:
        """Copy ``reader`` to ``writer`` until EOF; when ``delayed``, each chunk leaves the
        current delay after it arrived (a delay line: reading does not wait for it)."""
        line: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        async def send() -> None:
            while (item := await line.get())[1]:
                due, data = item
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(send()) if delayed else None
        try:
            while data := await reader.read(CHUNK):
                if self._flowing is not None:
                    await self._flowing.wait()
                seconds = self.current_delay_s() if delayed else 0.0
                if sender is None:
                    writer.write(data)
                    await writer.drain()
                    continue
                if seconds > 0:
                    self.chunks_delayed += 1
                line.put_nowait((loop.time() + seconds, data))
            if sender is not None:
                line.put_nowait((0.0, b""))  # EOF: after what is in the line
                await sender
        except OSError:
            # A reset on either side ends this direction; the caller closes both sockets.
            return
        finally:
            if sender is not None and not sender.done():
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await sender
        if writer.can_write_eof():
            with contextlib.suppress(OSError, RuntimeError):
                writer.write_eof()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(client_w)
        try:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    server_r, server_w = await asyncio.open_connection(*self.target)
            except (OSError, TimeoutError) as exc:
                log.info("target %s:%s unreachable: %s", *self.target, exc)
                await _close(client_w)
                return
            self._writers.add(server_w)
            try:
                await asyncio.gather(
                    self._pipe(client_r, server_w, True),
                    self._pipe(server_r, client_w, self.both_ways),
                )
            finally:
                self._writers.discard(server_w)
                await _close(server_w)
                await _close(client_w)
        finally:
            self._writers.discard(client_w)
            self._tasks.discard(task)


def select_loop() -> asyncio.AbstractEventLoop:
    """An event loop waiting with ``select()``: its timeout has microseconds (see
    :class:`DelayProxy`)."""
    return asyncio.SelectorEventLoop(selectors.SelectSelector())
