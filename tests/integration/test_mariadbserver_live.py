"""``scripts/mariadbserver.py`` on real ``mariadbd`` servers: start, connect, freeze (a
connection is accepted but never greeted: a client's connect times out), thaw (it answers
again), stop (refused), start again on the same data directory (the data survived a
SIGKILL), and the command line the shell scripts use.

Skipped where ``mariadbd`` cannot be started; a failure under ``CI=true``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dbservers import (
    MariaDBServer,
    MariaDBServers,
    greeting,
    query,
    require_mariadb,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "mariadbserver.py"


@pytest.fixture(scope="module")
def server() -> Iterator[MariaDBServer]:
    require_mariadb()
    started = time.perf_counter()
    with MariaDBServers(1) as servers:
        print(f"template + first start: {time.perf_counter() - started:.2f} s")
        yield servers.servers[0]


def test_answers_with_kollas_defaults_on_loopback(server: MariaDBServer) -> None:
    assert "MariaDB" in greeting(server.port)
    done = query(server.port, "SELECT @@character_set_server, @@collation_server, @@bind_address")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["utf8mb3", "utf8mb3_general_ci", "127.0.0.1"]
    server.create_databases(["nova_cell1"])
    server.create_databases(["nova_cell1"])  # idempotent
    done = query(
        server.port,
        "SELECT default_collation_name FROM information_schema.schemata "
        "WHERE schema_name = 'nova_cell1'",
    )
    assert done.stdout.split() == ["utf8mb3_general_ci"]


def test_freeze_thaw_stop_restart(server: MariaDBServer) -> None:
    query(server.port, "CREATE DATABASE IF NOT EXISTS survives; CREATE TABLE IF NOT EXISTS "
          "survives.t (i INT PRIMARY KEY); REPLACE INTO survives.t VALUES (7)")  # fmt: skip
    pid = server.pid
    assert pid is not None
    assert server.freeze() == [pid]
    assert server.frozen
    started = time.perf_counter()
    with pytest.raises(TimeoutError):
        greeting(server.port, timeout_s=1.0)
    hung = query(server.port, "SELECT 1", timeout_s=1)
    assert hung.returncode != 0
    print(f"frozen: the client gave up after {time.perf_counter() - started:.1f} s")

    assert server.thaw()
    assert not server.frozen
    assert query(server.port, "SELECT 1").stdout.split() == ["1"]

    assert server.stop("immediate")
    assert not server.running
    with pytest.raises(ConnectionRefusedError):
        greeting(server.port)
    assert not server.stop("immediate")  # nothing to do

    started = time.perf_counter()
    assert server.start()
    print(f"restart after SIGKILL (crash recovery): {time.perf_counter() - started:.2f} s")
    assert server.pid not in (None, pid)
    assert query(server.port, "SELECT i FROM survives.t").stdout.split() == ["7"]
    assert not server.start()  # already running


def test_a_frozen_server_stops_at_once(server: MariaDBServer) -> None:
    server.freeze()
    started = time.perf_counter()
    assert server.stop("fast")  # thawed first, then a clean shutdown
    print(f"fast stop of a frozen server: {time.perf_counter() - started:.2f} s")
    assert not server.frozen
    assert not server.running
    server.start()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_command_line(server: MariaDBServer) -> None:
    where = [str(server.datadir), "--port", str(server.port), "--sockdir", str(server.sockdir),
             "--log", str(server.logfile)]  # fmt: skip
    status = _cli("status", *where)
    assert status.returncode == 0, status.stderr
    state, port, pid, frozen = status.stdout.split()
    assert (state, port, pid, frozen) == ("running", str(server.port), str(server.pid), "-")

    frozen_line = _cli("freeze", *where)
    assert frozen_line.stdout.split()[0] == "frozen"
    assert _cli("freeze", *where).returncode == 3  # already frozen
    assert _cli("thaw", *where).returncode == 0
    assert _cli("thaw", *where).returncode == 3

    assert _cli("stop", *where, "--mode", "immediate").returncode == 0
    assert _cli("status", *where).stdout.split() == ["stopped", "-", "-", "-"]
    assert _cli("status", *where).returncode == 3
    started = _cli("start", *where, "--database", "nova_api")
    assert started.returncode == 0, started.stderr
    assert started.stdout.split()[:2] == ["running", str(server.port)]
    again = _cli("start", *where, "--database", "nova_cell9")
    assert again.returncode == 3  # already running, but the database is created
    assert query(server.port, "SHOW DATABASES LIKE 'nova_cell9'").stdout.split() == ["nova_cell9"]

    wrong = _cli("start", str(server.datadir), "--port", str(server.port + 1))
    assert wrong.returncode == 1
    assert "already runs on port" in wrong.stderr
