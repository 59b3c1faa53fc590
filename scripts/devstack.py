#!/usr/bin/env python3
"""``scripts/devstack``'s commands (stdlib only; ``scripts/devstack`` runs this file).

The docker-compose topology without Docker: one local database server per cell plus one
for the API database (PostgreSQL, or MariaDB with --backend mariadb), a delay proxy in
front of every cell, a private Redis, seeding, and the gateway -- all on loopback, all
under one base directory. :data:`USAGE` lists the commands; :mod:`stackconf` the
environment (directories, ports, ``state.env``), :mod:`stackdb` the database servers,
:mod:`stackservices` the proxies, Redis, seeder, gateway and Prometheus, :mod:`stackprocs`
ports and processes.

cell_mappings point at the delay proxies, so ``scripts/outage cellN slow`` can slow a cell
down; ``scripts/outage`` reads ``$CELLGATE_DEVSTACK_DIR/state.env``, which ``up`` writes.
MariaDB cells get kolla's server defaults (utf8mb3, utf8mb3_general_ci) and a database
nova_cellN each (nova_api for the API database); PostgreSQL cells a database nova_cell.
Other ``CELLGATE_*`` variables (``CELLGATE_CELL_TIMEOUT_S``, ...) reach the gateway
unchanged; ``CELLGATE_AUTH_MODE`` defaults to noauth. The machine's own PostgreSQL (5432),
MariaDB (3306) and Redis (6379) are never touched.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path

from stackconf import Layout, StackError, fail, is_uint, read_state, say, write_state
from stackdb import DbServers, backend_of, stack_backend
from stackprocs import guard_ports
from stackservices import Services

__all__ = ["USAGE", "main"]

USAGE = """\
The docker-compose topology without Docker: one local database server per cell plus one
for the API database (PostgreSQL, or MariaDB with --backend mariadb), a delay proxy in
front of every cell, a private Redis, seeding, and the gateway -- all on loopback, all
under one base directory.

  scripts/devstack up [--backend postgresql|mariadb] [--cells N] [--instances M] [--reseed]
                      [--databases-only]   start (idempotent), seed, serve
  scripts/devstack down [--purge]          stop what up started
  scripts/devstack status                  one line per component
  scripts/devstack start redis             start the stack's Redis again (after an outage)

--databases-only starts the database servers, proxies and Redis and writes state.env,
but neither seeds nor serves.

"""
STOPPED = 3  # status: something is not running


class Usage(Exception):
    """Print :data:`USAGE` on stderr, exit status 2."""


def _in_parallel(jobs: Sequence[Callable[[], None]]) -> bool:
    """Run ``jobs`` at once; whether every one succeeded (each failure said why)."""

    def run(job: Callable[[], None]) -> bool:
        try:
            job()
        except StackError as exc:
            if str(exc):
                fail(str(exc))
            return False
        return True

    with ThreadPoolExecutor(max(1, len(jobs))) as pool:
        return all(list(pool.map(run, jobs)))


def _option(args: list[str], flag: str) -> str:
    if len(args) < 2:
        raise StackError(f"{flag} needs a value")
    value = args[1]
    del args[:2]
    return value


def cmd_up(layout: Layout, argv: list[str]) -> int:
    cells_text, instances_text, backend_name = "4", "20000", "postgresql"
    reseed = only_databases = False
    started = time.monotonic()
    args = list(argv)
    while args:
        match args[0]:
            case "--backend":
                backend_name = _option(args, "--backend")
            case "--cells":
                cells_text = _option(args, "--cells")
            case "--instances":
                instances_text = _option(args, "--instances")
            case "--reseed":
                reseed = True
                del args[0]
            case "--databases-only":
                only_databases = True
                del args[0]
            case "-h" | "--help":
                raise Usage
            case other:
                raise StackError(f"up: unknown argument '{other}'")
    if not is_uint(cells_text) or not 1 <= int(cells_text) <= 98:
        raise StackError(f"--cells must be 1..98 (base+99 is Redis), got '{cells_text}'")
    if not is_uint(instances_text):
        raise StackError(f"--instances must be a number, got '{instances_text}'")
    cells, instances = int(cells_text), int(instances_text)
    backend = backend_of(layout, backend_name)
    services = Services(layout)
    ports = [layout.api_port, layout.redis_port, layout.gateway_port]
    if services.prometheus_wanted():
        ports.append(layout.prom_port)
    for i in range(1, cells + 1):
        ports += [layout.cell_port(i), layout.proxy_port(i)]
    guard_ports(ports)

    # An existing stack of another shape would leave strays behind.
    if (state := read_state(layout.state_file)) is not None:
        old_backend = state.get("BACKEND") or "postgresql"
        running = DbServers(layout, backend_of(layout, old_backend))
        old = (state.get("CELLS", ""), state.get("PORT_BASE", ""), state.get("GATEWAY_PORT", ""))
        new = (str(cells), str(layout.port_base), str(layout.gateway_port))
        if (old, old_backend) != (new, backend_name):
            old_cells = int(old[0]) if is_uint(old[0]) else 0
            if any(running.running(n) for n in ["api", *_cell_names(old_cells)]):
                raise StackError(
                    f"a different stack (cells, port base, gateway port, backend = {' '.join(old)}"
                    f" {old_backend}) runs in {layout.base_dir}; run 'scripts/devstack down' first"
                )

    servers = DbServers(layout, backend)
    servers.prepare_dirs()
    names = ["api", *_cell_names(cells)]
    servers.create(names)
    if not _in_parallel([partial(servers.start, name) for name in names]):
        raise StackError(f"a {backend.kind} server did not start")
    if not _in_parallel([partial(services.proxy_start, i) for i in range(1, cells + 1)]):
        raise StackError("a delay proxy did not start")
    services.redis_start()
    write_state(layout, backend, cells, instances, prometheus=services.prometheus_wanted())
    if only_databases:
        say(
            f"databases up in {int(time.monotonic() - started)} s (no seed, no gateway); state:"
            f" {layout.state_file}"
        )
        return 0

    stamp = f"cells={cells} instances={instances}"
    if not reseed and _read_stamp(layout.seed_stamp) == stamp:
        say(f"already seeded ({stamp}); --reseed forces it")
    else:
        # The gateway caches cell_mappings: restart it around a new seed.
        services.gateway_stop()
        services.seed(backend, cells, instances)
    services.gateway_start(backend)
    services.prometheus_start()
    say(f"up in {int(time.monotonic() - started)} s; state: {layout.state_file}")
    say(
        "try: curl -s -H 'X-Auth-Token: admin:admin'"
        f" 'http://127.0.0.1:{layout.gateway_port}/v2.1/servers?all_tenants=1&limit=3'"
    )
    return 0


def _cell_names(cells: int) -> list[str]:
    return [f"cell{i}" for i in range(1, cells + 1)]


def _read_stamp(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").rstrip("\n")
    except OSError:
        return None


def known_cells(layout: Layout, db_dir: str) -> list[int]:
    """Cell numbers present on disk (data directories, proxy pid files): ``down`` must
    also stop what a larger ``up`` left."""
    found: set[int] = set()
    for directory, prefix, suffix in (
        (db_dir, "cell", ""),
        (str(layout.pid_dir), "proxy-cell", ".pid"),
    ):
        try:
            entries = os.listdir(directory)
        except OSError:
            continue
        for entry in entries:
            number = entry.removeprefix(prefix).removesuffix(suffix)
            if entry.startswith(prefix) and entry.endswith(suffix) and is_uint(number):
                found.add(int(number))  # not cellN.frozen, cellN.log
    return sorted(found)


def cmd_down(layout: Layout, argv: list[str]) -> int:
    purge = False
    for arg in argv:
        match arg:
            case "--purge":
                purge = True
            case "-h" | "--help":
                raise Usage
            case other:
                raise StackError(f"down: unknown argument '{other}'")
    backend = backend_of(layout, stack_backend(layout, read_state(layout.state_file)))
    services, servers = Services(layout), DbServers(layout, backend)
    services.prometheus_stop()
    services.gateway_stop()
    for n in known_cells(layout, str(backend.db_dir)):
        services.proxy_stop(n)
    services.redis_stop()
    names = ["api", *(f"cell{n}" for n in known_cells(layout, str(backend.db_dir)))]
    if not _in_parallel([partial(servers.stop, name) for name in names]):
        raise StackError(f"a {backend.kind} server did not stop")
    if purge:
        shutil.rmtree(layout.base_dir, ignore_errors=True)
        say(f"purged {layout.base_dir}")
    return 0


def _line(name: str, state: str, port: object, pid: object = "", extra: str = "") -> None:
    print(f"{name:<12} {state:<8} port {port!s:<5} pid {pid or '-'!s:<7} {extra}", flush=True)


def cmd_status(env_layout: Layout, argv: list[str]) -> int:
    state = read_state(env_layout.state_file)
    if state is None:
        print(f"devstack: no stack in {env_layout.base_dir} (no state.env)", flush=True)
        return STOPPED
    layout = _from_state(env_layout, state)
    servers = DbServers(layout, backend_of(layout, state.get("BACKEND") or "postgresql"))
    services, result = Services(layout), 0
    api = servers.status("api")
    if api.state == "stopped":
        _line("apidb", "stopped", state.get("API_DB_PORT", ""))
        result = STOPPED
    else:
        _line("apidb", "running", state.get("API_DB_PORT", ""), api.pid)
    for i in range(1, int(state.get("CELLS") or 0) + 1):
        port, cell = layout.cell_port(i), servers.status(f"cell{i}")
        if cell.state == "frozen":
            _line(f"cell{i}", "hung", port, cell.pid, "(SIGSTOPped by scripts/outage)")
            result = STOPPED
        elif cell.state == "running":
            _line(f"cell{i}", "running", port, cell.pid)
        else:
            _line(f"cell{i}", "stopped", port)
            result = STOPPED
        proxy, delay = services.proxy_line(i)
        if proxy is not None:
            _line(f"proxy-cell{i}", "running", layout.proxy_port(i), proxy, f"delay {delay} s")
        else:
            _line(f"proxy-cell{i}", "stopped", layout.proxy_port(i))
            result = STOPPED
    for name, pid, port, extra in (
        ("redis", services.redis_pid(), layout.redis_port, ""),
        (
            "gateway",
            services.gateway_pid(),
            layout.gateway_port,
            f"http://127.0.0.1:{layout.gateway_port}",
        ),
    ):
        _line(name, "running" if pid else "stopped", port, pid, extra if pid else "")
        result = result if pid else STOPPED
    if prom_port := state.get("PROMETHEUS_PORT"):
        if (pid := services.prometheus_pid()) is not None:
            _line("prometheus", "running", prom_port, pid, state.get("PROMETHEUS_URL", ""))
        else:
            _line("prometheus", "stopped", prom_port)
            result = STOPPED
    return result


def _from_state(layout: Layout, state: dict[str, str]) -> Layout:
    """``layout`` with the ports ``state.env`` recorded (the stack that runs)."""
    return replace(
        layout,
        port_base=int(state.get("PORT_BASE") or layout.port_base),
        gateway_port=int(state.get("GATEWAY_PORT") or layout.gateway_port),
    )


def cmd_start(layout: Layout, argv: list[str]) -> int:
    """One component of a stack that is up (only redis so far)."""
    if argv != ["redis"]:
        raise StackError("start: only 'start redis' is supported")
    state = read_state(layout.state_file)
    if state is None:
        raise StackError(f"no stack in {layout.base_dir} (no state.env)")
    Services(_from_state(layout, state)).redis_start()
    return 0


COMMANDS = {"up": cmd_up, "down": cmd_down, "status": cmd_status, "start": cmd_start}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        layout = Layout.from_env(os.environ)
        if not args or args[0] in ("-h", "--help", "help"):
            raise Usage
        if (command := COMMANDS.get(args[0])) is None:
            print(f"devstack: unknown command '{args[0]}'", file=sys.stderr)
            raise Usage
        return command(layout, args[1:])
    except StackError as exc:
        if str(exc):
            fail(str(exc))
        return 1
    except Usage:
        sys.stderr.write(USAGE)
        return 2


if __name__ == "__main__":
    sys.exit(main())
