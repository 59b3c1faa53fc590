"""``cellgate demo | serve | seed | doctor | cells``.

``noauth`` trusts any ``X-Auth-Token: user:project`` (``admin`` included), so ``serve`` and
``demo`` refuse to bind it to anything but loopback (exit status 2) unless
``allow_insecure_noauth`` is set, and log a warning whenever it is active.

``serve`` stops with exit status 2 and a message naming the cell, table and column when a
database lacks one cellgate reads (the lifespan's schema check; see
:mod:`cells.schemacheck`). ``doctor`` is read-only (:mod:`gateway.doctor`).

Serving is :mod:`gateway.server` (one process) and :mod:`gateway.workers` (``serve
--workers N``).

Over the house size on purpose: one argparse parser per command with its help text, and
each command's few lines of wiring (serving is :mod:`gateway.server`, the doctor
:mod:`gateway.doctor`, seeding :mod:`cells.seeding`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import sqlite3
import sys
from pathlib import Path

from pydantic import ValidationError

from cells.doctor.indexes import DEFAULT_STRING_KEYS, listing_orders
from cells.schema import api_metadata, cell_metadata
from cells.seeding import SeedCell, SeedPlan, seed
from gateway.doctor import run_cells, run_doctor
from gateway.logs import configure_logging
from gateway.novaconf import NovaConfigError
from gateway.policy import Policy
from gateway.server import USAGE_ERROR, serve
from gateway.settings import Settings, load_settings
from gateway.workers import SettingsSource, serve_workers

__all__ = ["check_bind", "is_loopback", "main"]

log = logging.getLogger(__name__)

_DEMO_STAMP = "seeded.json"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine: 127.0.0.0/8, ``::1``, ``localhost``."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # any other name may resolve to anything
        return False


def check_bind(settings: Settings, host: str) -> str | None:
    """Why serving ``settings`` on ``host`` is refused, or ``None`` when it is allowed."""
    if settings.auth_mode != "noauth" or settings.allow_insecure_noauth or is_loopback(host):
        return None
    return (
        f"cellgate: refusing to serve auth_mode=noauth on {host}: anyone who can reach it "
        "may act as any project, admin included. Bind a loopback address (127.0.0.1, ::1), "
        "choose another CELLGATE_AUTH_MODE, or set CELLGATE_ALLOW_INSECURE_NOAUTH=true on a "
        "trusted network."
    )


def _demo_commands(
    host: str,
    port: int,
    auth_mode: str = "noauth",
    server_id: str | None = None,
    console: bool = False,
) -> str:
    """The demo's banner: commands that work as printed (``server_id``, a server of the
    ``demo`` project, for the ``openstack server show`` example)."""
    url = f"http://{host}:{port}"
    web = f"console: {url}/console; " if console else ""
    if auth_mode != "noauth":
        return (
            f"cellgate demo serving on {url}  ({web}auth_mode={auth_mode}; "
            "the noauth example tokens do not apply; Ctrl-C stops it)"
        )
    openstack = (
        f"  OS_IDENTITY_ENDPOINT_OVERRIDE={url}/identity/v3 openstack "
        f"--os-auth-type admin_token --os-endpoint {url}/v2.1 --os-token demo:demo"
    )
    lines = [
        f"cellgate demo serving on {url}  ({web}Ctrl-C stops it)",
        "Try:",
        f"  curl -s -H 'X-Auth-Token: demo:demo' '{url}/v2.1/servers/detail?limit=5'",
        f"  curl -s -H 'X-Auth-Token: demo:demo' "
        f"'{url}/v2.1/servers?limit=3&sort_key=display_name&sort_dir=asc'",
        f"  curl -s -H 'X-Auth-Token: admin:admin' '{url}/v2.1/servers?all_tenants=1&limit=3'",
        f"{openstack} server list --limit 5 --no-name-lookup",
    ]
    if server_id is not None:
        lines.append(f"{openstack} server show {server_id}")
    return "\n".join(lines)


def _demo_server(data_dir: Path) -> str | None:
    """The newest server of the ``demo`` project not deleted, from the demo's API database
    (its mappings), or ``None``."""
    query = (
        "SELECT instance_uuid FROM instance_mappings WHERE project_id = 'demo' "
        "AND NOT queued_for_delete ORDER BY created_at DESC, instance_uuid LIMIT 1"
    )
    with contextlib.closing(sqlite3.connect(data_dir / "api.db")) as conn:
        row = conn.execute(query).fetchone()
    return None if row is None else str(row[0])


def _seed_demo(data_dir: Path, cells: int, instances: int) -> None:
    """Seed the demo's SQLite databases unless a previous run left the same data."""
    stamp = data_dir / _DEMO_STAMP
    # The tables too: a folder seeded before cellgate read another table is seeded again.
    tables = sorted([*api_metadata.tables, *cell_metadata.tables])
    wanted = {"cells": cells, "instances": instances, "tables": tables}
    if stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    targets = [
        SeedCell(f"cell{i}", f"sqlite:///{data_dir / f'cell{i}.db'}") for i in range(1, cells + 1)
    ]
    print(f"seeding {instances} instances into {cells} SQLite cells under {data_dir} ...")
    api_url = f"sqlite:///{data_dir / 'api.db'}"
    asyncio.run(seed(api_url, targets, SeedPlan(instances=instances), progress=True))
    stamp.write_text(json.dumps(wanted))


def _refuse_unsafe_bind(settings: Settings, host: str) -> None:
    if (refusal := check_bind(settings, host)) is not None:
        print(refusal, file=sys.stderr)
        sys.exit(USAGE_ERROR)


def _log_format(args: argparse.Namespace) -> dict[str, object]:
    """``--log-format`` as a settings override (given, it wins over CELLGATE_LOG_FORMAT)."""
    return {} if args.log_format is None else {"log_format": args.log_format}


def _cmd_demo(args: argparse.Namespace) -> None:
    data_dir = Path(args.data_dir).resolve()
    # The demo's own cells and no Redis; auth and everything else from CELLGATE_* (noauth
    # when unset).
    settings = load_settings(
        None,
        api_database_url=f"sqlite:///{data_dir / 'api.db'}",
        cells=[],
        redis_url=None,
        console=not args.no_console,
        **_log_format(args),
    )
    _refuse_unsafe_bind(settings, args.host)
    _seed_demo(data_dir, args.cells, args.instances)
    banner = _demo_commands(
        args.host, args.port, settings.auth_mode, _demo_server(data_dir), settings.console
    )
    serve(settings, args.host, args.port, banner, demo=True)


def _load(source: SettingsSource) -> Settings:
    """``source``'s Settings; a ``--config``, ``--nova-config`` or policy file that cannot
    be read is a usage error (exit status 2) naming the file."""
    try:
        settings = source.load()
    except (FileNotFoundError, NovaConfigError, ValidationError) as exc:
        print(f"cellgate: {exc}", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    if settings.policy_file is not None:
        try:
            Policy(settings.policy_file, settings.admin_role)
        except Exception as exc:  # oslo.policy's parse errors have no common base
            print(f"cellgate: policy file {settings.policy_file}: {exc}", file=sys.stderr)
            sys.exit(USAGE_ERROR)
    return settings


def _cmd_serve(args: argparse.Namespace) -> None:
    source = SettingsSource(args.config, args.log_format, tuple(args.nova_config))
    settings = _load(source)
    _refuse_unsafe_bind(settings, args.host)
    banner = f"cellgate serving on http://{args.host}:{args.port}"
    if args.workers == 1:
        serve(settings, args.host, args.port, banner)
    else:
        banner += f" with {args.workers} worker processes"
        serve_workers(settings, source, args.workers, args.host, args.port, banner)


def _cmd_doctor(args: argparse.Namespace) -> None:
    settings = _load(SettingsSource(args.config, None, tuple(args.nova_config)))
    try:
        orders = listing_orders(args.sort_key or DEFAULT_STRING_KEYS)
    except ValueError as exc:  # a --sort-key the doctor cannot check
        print(f"cellgate doctor: {exc}", file=sys.stderr)
        sys.exit(USAGE_ERROR)
    sys.exit(run_doctor(settings, as_json=args.json, orders=orders, timeout_s=args.timeout))


def _cmd_cells(args: argparse.Namespace) -> None:
    settings = _load(SettingsSource(args.config, None, tuple(args.nova_config)))
    sys.exit(run_cells(settings, as_json=args.json, gateway=args.gateway, timeout_s=args.timeout))


def _cmd_seed(args: argparse.Namespace) -> None:
    cells: list[SeedCell] = []
    for spec in args.cell:
        name, sep, url = spec.partition("=")
        if not sep or not name or not url:
            raise SystemExit(f"--cell expects NAME=URL, got {spec!r}")
        cells.append(SeedCell(name, url))
    if args.cells:
        if not args.cell_url_template or "{n}" not in args.cell_url_template:
            raise SystemExit("--cells needs --cell-url-template containing {n}")
        cells += [
            SeedCell(f"cell{n}", args.cell_url_template.format(n=n))
            for n in range(1, args.cells + 1)
        ]
    if not cells:
        raise SystemExit("give cells with --cell NAME=URL or --cells N --cell-url-template")
    plan = SeedPlan(
        instances=args.instances,
        seed=args.seed,
        projects=args.projects,
        cell_ratio=args.cell_ratio,
    )
    summary = asyncio.run(seed(args.api_database_url, cells, plan, progress=not args.quiet))
    print(
        f"seeded {summary.mappings} instances in {summary.elapsed_s:.1f} s: "
        + ", ".join(f"{name}={n}" for name, n in summary.instances_per_cell.items())
    )


def _add_log_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=["auto", "json", "text"],
        help="log lines as json or text (default: CELLGATE_LOG_FORMAT, else auto: text when "
        "stderr is a terminal, json otherwise)",
    )


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML configuration file")
    parser.add_argument(
        "--nova-config",
        action="append",
        default=[],
        metavar="PATH",
        help="the operator's nova.conf, read with oslo.config (repeatable, later files "
        "win); CELLGATE_* variables and --config win over it (README: nova.conf)",
    )


def _worker_count(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value!r}")
    return count


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cellgate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="seed SQLite cells and serve them (no services needed)")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8774)
    demo.add_argument("--data-dir", default="cellgate-demo")
    demo.add_argument("--cells", type=int, default=3)
    demo.add_argument("--instances", type=int, default=30_000)
    demo.add_argument(
        "--no-console", action="store_true", help="do not serve the web console at /console"
    )
    _add_log_format(demo)
    demo.set_defaults(func=_cmd_demo)

    serve = sub.add_parser("serve", help="serve the configured cells (CELLGATE_* / TOML)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8774)
    _add_config(serve)
    serve.add_argument(
        "--workers",
        type=_worker_count,
        default=1,
        metavar="N",
        help="worker processes sharing the port (default 1: serve in this process); each "
        "has its own connection pools, breakers and coalescing (README: Workers)",
    )
    _add_log_format(serve)
    serve.set_defaults(func=_cmd_serve)

    doctor = sub.add_parser(
        "doctor",
        help="read-only report per cell: reachable, latency, instances, collation, schema, "
        "listing orders lacking an index (with CREATE INDEX statements)",
    )
    _add_config(doctor)
    doctor.add_argument("--json", action="store_true", help="one JSON document")
    doctor.add_argument(
        "--sort-key",
        action="append",
        metavar="KEY",
        help="string sort key to check (repeatable; default: "
        + ", ".join(DEFAULT_STRING_KEYS)
        + ")",
    )
    doctor.add_argument(
        "--timeout", type=float, default=10.0, help="deadline of each step, seconds"
    )
    doctor.set_defaults(func=_cmd_doctor)

    cells_cmd = sub.add_parser(
        "cells",
        help="a table of cells: name, uuid, reachable, latency, instances, breaker state "
        "(from a running gateway's /readyz with --gateway)",
    )
    _add_config(cells_cmd)
    cells_cmd.add_argument("--json", action="store_true", help="one JSON document")
    cells_cmd.add_argument(
        "--gateway", metavar="URL", help="a running gateway, for its breaker states"
    )
    cells_cmd.add_argument(
        "--timeout", type=float, default=5.0, help="deadline of each step, seconds"
    )
    cells_cmd.set_defaults(func=_cmd_cells)

    seed_cmd = sub.add_parser("seed", help="create tables and write realistic instances")
    seed_cmd.add_argument("--api-database-url", required=True)
    seed_cmd.add_argument("--cell", action="append", default=[], metavar="NAME=URL")
    seed_cmd.add_argument("--cells", type=int, default=0)
    seed_cmd.add_argument(
        "--cell-url-template", help="e.g. postgresql://postgres@127.0.0.1/cg_cell{n}"
    )
    seed_cmd.add_argument("--instances", type=int, default=30_000)
    seed_cmd.add_argument("--projects", type=int, default=12)
    seed_cmd.add_argument("--seed", type=int, default=1)
    seed_cmd.add_argument(
        "--cell-ratio",
        type=float,
        default=0.5,
        help="each cell's share of instances relative to the previous cell's (0.5: halving, "
        "1: even); the last cell stays empty",
    )
    seed_cmd.add_argument("--quiet", action="store_true")
    seed_cmd.set_defaults(func=_cmd_seed)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``cellgate`` console script."""
    args = _parser().parse_args(argv)
    configure_logging("INFO")
    args.func(args)


if __name__ == "__main__":
    main()
