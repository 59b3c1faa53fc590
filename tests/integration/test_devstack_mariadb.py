"""``scripts/devstack --backend mariadb`` and ``scripts/outage`` on MariaDB cells, on real
``mariadbd`` servers.

The stack comes up with ``--databases-only``: an API database server and 3 cell servers
(``scripts/mariadbserver.py``, kolla's ``utf8mb3_general_ci`` defaults, databases
``nova_api`` and ``nova_cellN``), a delay proxy in front of every cell and a private Redis.
Then cell1 is taken down (SIGKILL: refused), restored, frozen (SIGSTOP: connections are
accepted but never greeted), thawed, and slowed down through its proxy; the other cells
answer throughout. ``scripts/devstack down --purge`` runs whatever happens.

Seeding MariaDB cells and serving them (``cellgate seed`` and the gateway on
``mysql+pymysql://`` URLs) belong to the MariaDB driver's work; this test covers the servers.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator

import pytest

from tests.support.dbservers import greeting, query, require_mariadb
from tests.support.devstack import DEVSTACK, OUTAGE, REREAD_S, Stack, devstack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CELLS = 3


@pytest.fixture
def stack() -> Iterator[Stack]:
    require_mariadb()
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    with devstack(CELLS, CELLGATE_DEVSTACK_PROMETHEUS="off") as stack:
        yield stack


def _port(stack: Stack, key: str) -> int:
    return int(stack.state[key])


def _answers(port: int, database: str = "") -> bool:
    done = query(port, "SELECT 1", database=database, timeout_s=2)
    return done.returncode == 0 and done.stdout.split() == ["1"]


def _cell_line(stack: Stack, cell: str) -> str:
    status = stack.run(str(DEVSTACK), "status").stdout.splitlines()
    return next(line for line in status if line.split()[0] == cell)


def test_mariadb_devstack_outages(stack: Stack) -> None:
    started = time.perf_counter()
    up = stack.run(
        str(DEVSTACK), "up", "--backend", "mariadb", "--cells", str(CELLS), "--databases-only"
    )
    print(f"devstack up --backend mariadb --databases-only: {time.perf_counter() - started:.1f} s")
    assert up.returncode == 0, up.stderr
    stack.load_state()
    assert stack.state["BACKEND"] == "mariadb"
    api_port = _port(stack, "API_DB_PORT")
    assert stack.state["API_DATABASE_URL"] == f"mysql+pymysql://root@127.0.0.1:{api_port}/nova_api"
    for i in range(1, CELLS + 1):
        proxy = _port(stack, f"CELL{i}_PROXY_PORT")
        # The gateway and the seed reach every cell through its delay proxy.
        url = f"mysql+pymysql://root@127.0.0.1:{proxy}/nova_cell{i}"
        assert stack.state[f"CELL{i}_URL"] == url
        done = query(proxy, "SELECT @@collation_database", database=f"nova_cell{i}")
        assert done.stdout.split() == ["utf8mb3_general_ci"], done.stderr
    assert _answers(api_port, "nova_api")

    status = stack.run(str(DEVSTACK), "status")
    assert status.returncode == 3  # no gateway: --databases-only
    assert status.stdout.count("running") == 1 + 2 * CELLS + 1  # apidb, cells, proxies, redis
    assert "gateway      stopped" in status.stdout

    cell1 = _port(stack, "CELL1_PORT")
    proxy1 = _port(stack, "CELL1_PROXY_PORT")
    others = [_port(stack, f"CELL{i}_PORT") for i in range(2, CELLS + 1)]

    # Down: SIGKILL. Refused directly; through the proxy the connection is dropped.
    down = stack.run(str(OUTAGE), "cell1", "down")
    assert down.returncode == 0
    assert "MariaDB on port" in down.stdout
    with pytest.raises(ConnectionRefusedError):
        greeting(cell1)
    assert not _answers(proxy1)
    assert all(_answers(port) for port in others)
    assert _cell_line(stack, "cell1").split()[1] == "stopped"
    assert "already down" in stack.run(str(OUTAGE), "cell1", "down").stdout

    t0 = time.perf_counter()
    assert stack.run(str(OUTAGE), "cell1", "restore").returncode == 0
    print(f"restore after SIGKILL: {time.perf_counter() - t0:.2f} s")
    assert _answers(proxy1, "nova_cell1")  # the database survived the crash

    # Hang: SIGSTOP. Accepted by the kernel, never greeted: a client's connect times out.
    assert stack.run(str(OUTAGE), "cell1", "hang").returncode == 0
    assert _cell_line(stack, "cell1").split()[1] == "hung"
    with pytest.raises(TimeoutError):
        greeting(cell1, timeout_s=1.0)
    assert not _answers(proxy1)
    assert all(_answers(port) for port in others)
    assert stack.run(str(OUTAGE), "cell1", "restore").returncode == 0
    assert _cell_line(stack, "cell1").split()[1] == "running"
    assert _answers(proxy1)

    # Slow: every client-to-server chunk through cell1's proxy waits 0.3 s.
    assert stack.run(str(OUTAGE), "cell1", "slow", "--delay", "0.3").returncode == 0
    time.sleep(2 * REREAD_S)  # the proxy rereads its delay file this often
    t0 = time.perf_counter()
    assert _answers(proxy1)
    slow_s = time.perf_counter() - t0
    assert stack.run(str(OUTAGE), "cell1", "restore").returncode == 0
    print(f"one query through the slowed proxy: {slow_s:.2f} s")
    assert slow_s >= 0.3

    # Another backend on the same directory is refused while this stack runs.
    other = stack.run(str(DEVSTACK), "up", "--cells", str(CELLS), "--databases-only")
    assert other.returncode != 0
    assert "different stack" in other.stderr
    assert "mariadb" in other.stderr
