#!/usr/bin/env python3
"""Compare cellgate's tables with Nova's own models, from a pinned ``nova`` release on PyPI.

    scripts/nova_conformance                          # check against nova 34.0.0
    scripts/nova_conformance --nova-version 31.0.0    # another release
    scripts/nova_conformance --create-db URL --database main   # Nova's cell tables on URL
    scripts/nova_conformance --create-db URL --database api    # Nova's API tables on URL

Nova is installed with ``pip install --no-deps`` into a temporary venv together with the
few packages its model modules import (:data:`MODEL_DEPS`); nothing of Nova's is kept.
``scripts/nova_dump.py`` runs inside that venv and prints the tables as JSON; the same
function describes cellgate's ``cell_metadata``/``api_metadata``. For every table cellgate
defines, the report compares columns (generic kind, length, nullability, primary key)
and indexes and unique constraints (name, columns, uniqueness). Exit status 1 on any
mismatch. ``--create-db`` creates the database if needed and runs the DDL of *all* of
Nova's tables of that database (PostgreSQL), as Nova's models would create them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import asyncpg  # noqa: E402
from nova_dump import describe  # noqa: E402
from venvs import LOCKS, ensure_venv  # noqa: E402

from cells.registry import async_url  # noqa: E402
from cells.schema import api_metadata, cell_metadata  # noqa: E402
from cells.seeding import ensure_database  # noqa: E402

__all__ = ["DEFAULT_NOVA", "MODEL_DEPS", "compare", "create_db", "nova_shapes", "nova_venv"]

DEFAULT_NOVA = "34.0.0"
MODEL_DEPS = (
    "sqlalchemy", "greenlet", "typing_extensions", "oslo.db", "oslo.utils", "oslo.config",
    "oslo.log", "oslo.i18n", "oslo.context", "oslo.serialization", "debtcollector", "wrapt",
    "netaddr", "pbr", "rfc3986", "stevedore", "iso8601", "psutil", "python-dateutil", "six",
)  # fmt: skip
"""What ``nova/db/{main,api}/models.py`` import, directly or through oslo.db (no Nova deps)."""
NOVA_LOCK = LOCKS / "nova.txt"
"""``nova==DEFAULT_NOVA`` and its dependencies, resolved by ``scripts/lock``."""

Shape = dict[str, Any]


@contextmanager
def nova_venv(version: str, reuse: Path | None = None) -> Iterator[Path]:
    """A venv holding ``nova==version`` and :data:`MODEL_DEPS`; yields its python.

    With ``reuse``, the venv lives there and is kept (and reused when it already holds
    this version); otherwise it is a temporary directory removed afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="nova-conformance-") as tmp:
        root = reuse or Path(tmp) / "venv"
        packages = [f"nova=={version}", *MODEL_DEPS]
        # The lock pins the default release's dependencies; another release resolves freely.
        lock = NOVA_LOCK if version == DEFAULT_NOVA else None
        yield ensure_venv(root, packages, constraints=lock, no_deps=True, label="nova_conformance")


def nova_shapes(python: Path) -> dict[str, Shape]:
    """``{"main": ..., "api": ...}``: Nova's tables as :func:`nova_dump.describe` sees them."""
    out = subprocess.run(
        [str(python), str(HERE / "nova_dump.py"), "--nova"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    shapes: dict[str, Shape] = json.loads(out)
    return shapes


def compare(nova: Shape, ours: Shape) -> list[str]:
    """Mismatches between Nova's and cellgate's shapes, for the tables cellgate defines."""
    problems: list[str] = []
    for name, table in sorted(ours.items()):
        theirs = nova.get(name)
        if theirs is None:
            problems.append(f"{name}: not a Nova table")
            continue
        for column in sorted(set(theirs["columns"]) | set(table["columns"])):
            a, b = theirs["columns"].get(column), table["columns"].get(column)
            if a is None:
                problems.append(f"{name}.{column}: not in Nova's models")
            elif b is None:
                problems.append(f"{name}.{column}: missing (Nova has {_column(a)})")
            elif a != b:
                problems.append(f"{name}.{column}: Nova {_column(a)}, cellgate {_column(b)}")
        for index in sorted(set(theirs["indexes"]) | set(table["indexes"])):
            a, b = theirs["indexes"].get(index), table["indexes"].get(index)
            if a != b:
                problems.append(f"{name} index {index}: Nova {_index(a)}, cellgate {_index(b)}")
    return problems


def _column(c: dict[str, Any]) -> str:
    length = f"({c['length']})" if c["length"] else ""
    flags = ("NULL" if c["nullable"] else "NOT NULL") + (" PK" if c["primary_key"] else "")
    return f"{c['kind']}{length} {flags}"


def _index(i: dict[str, Any] | None) -> str:
    if i is None:
        return "none"
    return ("UNIQUE " if i["unique"] else "") + f"({', '.join(i['columns'])})"


def report(nova: dict[str, Shape]) -> tuple[list[str], list[str]]:
    """Report lines and problems for cellgate's cell and API tables against ``nova``."""
    lines: list[str] = []
    problems: list[str] = []
    for label, key, metadata in (("cell", "main", cell_metadata), ("api", "api", api_metadata)):
        ours = describe(metadata)
        found = compare(nova[key], ours)
        for name, table in ours.items():
            n_idx = len(table["indexes"])
            bad = [p for p in found if p.startswith((f"{name}.", f"{name}:", f"{name} "))]
            status = "ok" if not bad else f"{len(bad)} mismatch(es)"
            lines.append(
                f"  {label:4} {name:22} {len(table['columns']):3} columns "
                f"{n_idx:2} indexes/uniques  {status}"
            )
        problems.extend(found)
    return lines, problems


async def create_db(url: str, statements: list[str]) -> None:
    """Create the PostgreSQL database ``url`` if needed and run ``statements`` in it."""
    await ensure_database(url)
    dsn = async_url(url).replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            for statement in statements:
                await conn.execute(statement)
    finally:
        await conn.close()


def nova_ddl(python: Path, database: str) -> list[str]:
    """The PostgreSQL DDL of Nova's ``main`` (cell) or ``api`` database."""
    out = subprocess.run(
        [str(python), str(HERE / "nova_dump.py"), "--nova", "--ddl", database],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    statements: list[str] = json.loads(out)
    return statements


def main() -> int:
    """The command line; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nova-version", default=DEFAULT_NOVA)
    parser.add_argument("--venv", type=Path, help="keep (and reuse) the venv in this directory")
    parser.add_argument("--create-db", metavar="URL", help="create Nova's tables on URL")
    parser.add_argument("--database", choices=("main", "api"), default="main")
    args = parser.parse_args()
    with nova_venv(args.nova_version, args.venv) as python:
        if args.create_db:
            asyncio.run(create_db(args.create_db, nova_ddl(python, args.database)))
            print(f"created nova {args.nova_version} {args.database} tables")
            return 0
        lines, problems = report(nova_shapes(python))
    print(f"cellgate vs nova {args.nova_version} models:")
    print("\n".join(lines))
    for problem in problems:
        print(f"MISMATCH {problem}")
    print("conformant" if not problems else f"{len(problems)} mismatch(es)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
