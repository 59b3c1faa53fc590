"""The machine's shared services the integration tests use, and the check that they run.

Under ``CI=true`` a missing service fails the test; elsewhere it skips.
"""

from __future__ import annotations

import os
import socket

import pytest

__all__ = ["MYSQL_BASE", "PG_BASE", "REDIS_HOST", "REDIS_PORT", "require_service"]

PG_BASE = "postgresql://postgres@127.0.0.1:5432"
MYSQL_BASE = "mysql+pymysql://root@127.0.0.1:3306"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Fail (CI) or skip (elsewhere) when a real service is not reachable."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
