"""The first packet a MariaDB or MySQL server sends: its handshake greeting (stdlib only).

A server that is up sends it as soon as a connection is accepted; a frozen one (SIGSTOP)
has its connections accepted by the kernel but never greets. ``scripts/mariadbserver.py``
waits for it to know a server is ready, and the tests use it to tell up, hung and down
apart without a driver.

Packet layout: 3 bytes payload length (little-endian), 1 byte sequence number, payload.
A greeting's payload starts with protocol version 10 and the NUL-terminated server
version; an error packet's with 0xFF, a 2-byte error code, ``#`` and a 5-byte SQLSTATE,
and the message.
"""

from __future__ import annotations

import socket
import time

__all__ = ["GreetingError", "greeting", "parse_greeting"]

PROTOCOL_10 = 10
ERROR_PACKET = 0xFF


class GreetingError(Exception):
    """The server answered, but not with a greeting (an error packet, or junk)."""


def parse_greeting(data: bytes) -> str:
    """The server version from a greeting packet (header included)."""
    if len(data) < 5:
        raise GreetingError(f"short packet ({len(data)} bytes)")
    length = int.from_bytes(data[:3], "little")
    payload = data[4 : 4 + length]
    if payload[0] == ERROR_PACKET and len(payload) >= 3:
        code = int.from_bytes(payload[1:3], "little")
        message = payload[9:] if payload[3:4] == b"#" else payload[3:]
        raise GreetingError(f"error {code}: {message.decode(errors='replace')}")
    end = payload.find(b"\0", 1)
    if payload[0] != PROTOCOL_10 or end < 0:
        raise GreetingError(f"not a protocol 10 greeting: {payload[:16]!r}")
    return payload[1:end].decode(errors="replace")


def greeting(port: int, host: str = "127.0.0.1", *, timeout_s: float = 2.0) -> str:
    """Connect, read the greeting and close; the server version. ``TimeoutError`` when it
    does not come within ``timeout_s`` (a hung server), ``OSError`` when refused."""
    deadline = time.monotonic() + timeout_s
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        data = b""
        while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:3], "little"):
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = sock.recv(4096)
            if not chunk:
                raise GreetingError("connection closed before the greeting")
            data += chunk
    return parse_greeting(data)
