"""``cellgate doctor``: run :func:`cells.doctor.diagnose` on the configured databases and
print it, as plain columns for a terminal or as JSON (``--json``).

Exit status 0 when the API database and every reachable cell pass the schema check, else 1.
Unreachable cells do not fail it: they are outages, which the gateway handles per request.
"""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

import orjson

from cells.doctor import DatabaseReport, Diagnosis, diagnose
from cells.doctor.indexes import ListingOrder, Serving, mysql_note
from cells.registry import Cell
from gateway.settings import Settings

__all__ = [
    "breakers_from_readyz",
    "render_cells",
    "render_json",
    "render_text",
    "run_cells",
    "run_doctor",
]


def _static_cells(settings: Settings) -> list[Cell]:
    return [
        Cell(id=-(i + 1), uuid=c.uuid, name=c.name, url=c.database_url)
        for i, c in enumerate(settings.cells)
    ]


def _schema(report: DatabaseReport) -> str:
    if not report.reachable:
        return "-"
    n = len(report.schema_problems)
    return "ok" if n == 0 else f"{n} problem{'s' if n > 1 else ''}"


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _database_rows(d: Diagnosis) -> list[list[str]]:
    rows = [["database", "reachable", "latency_ms", "version", "instances", "collation", "schema"]]
    for r in (d.api, *d.cells):
        rows.append(
            [
                r.name + (" (disabled)" if r.disabled else ""),
                "yes" if r.reachable else "no",
                "-" if r.latency_ms is None else f"{r.latency_ms:.1f}",
                (r.version or "-").split()[0],
                "-" if r.instances is None else str(r.instances),
                r.collation or "-",
                _schema(r),
            ]
        )
    return rows


def _order_rows(cells: Sequence[DatabaseReport]) -> list[list[str]]:
    labels = list(dict.fromkeys(o.order for c in cells for o in c.orders))
    rows = [["listing order", *(c.name for c in cells)]]
    for label in labels:
        row = [label]
        for cell in cells:
            found = [o.coverage for o in cell.orders if o.order == label]
            row.append(found[0].serving.value if found else "-")
        rows.append(row)
    return rows


def render_text(d: Diagnosis) -> str:
    """The diagnosis as plain columns, then problems, notes and recommended statements."""
    lines = _columns(_database_rows(d))
    for r in (d.api, *d.cells):
        lines += [f"  {r.name}: {e}" for e in r.errors]
        lines += [f"  {p}" for p in r.schema_problems]
    examined = [c for c in d.cells if c.orders]
    if examined:
        lines += ["", *_columns(_order_rows(examined))]
        lines.append(
            "(served: an index delivers the whole order; partial: only its first keys, "
            "the database sorts the ties; missing: none does)"
        )
        lines += [f"  {note}" for note in _notes(d)]
        notes = dict.fromkeys(
            f"  {c.name}: {o.order}: {o.coverage.note}"
            for c in examined
            for o in c.orders
            if o.coverage.note
        )
        lines += list(notes)
        statements: dict[str, list[str]] = {}
        for cell in examined:
            for o in cell.orders:
                if o.statement is not None and o.coverage.serving is not Serving.SERVED:
                    statements.setdefault(o.statement, []).append(cell.name)
        if statements:
            lines += ["", "Indexes an operator may choose to create (cellgate never runs them):"]
            for statement, names in statements.items():
                lines += [f"-- {', '.join(names)}", f"{statement};"]
    if not d.api.reachable:
        lines += ["", "the API database is unreachable: cells unknown"]
    lines += ["", "schema: ok" if d.ok else "schema: PROBLEMS (see above)"]
    return "\n".join(lines)


def _notes(d: Diagnosis) -> list[str]:
    """What the verdicts mean on the backends present (MariaDB/MySQL's index rules)."""
    return [mysql_note()] if any(c.backend == "mysql" and c.orders for c in d.cells) else []


def _report_dict(r: DatabaseReport) -> dict[str, object]:
    return {
        "name": r.name,
        "uuid": r.uuid,
        "reachable": r.reachable,
        "disabled": r.disabled,
        "errors": list(r.errors),
        "latency_ms": None if r.latency_ms is None else round(r.latency_ms, 3),
        "backend": r.backend,
        "version": r.version,
        "instances": r.instances,
        "collation": r.collation,
        "schema_ok": r.reachable and not r.schema_problems,
        "schema_problems": list(r.schema_problems),
        "orders": [
            {
                "order": o.order,
                "serving": o.coverage.serving.value,
                "index": o.coverage.index,
                "keys_served": o.coverage.keys,
                "note": o.coverage.note,
                "statement": o.statement,
            }
            for o in r.orders
        ],
    }


def render_json(d: Diagnosis) -> str:
    """The diagnosis as one JSON document."""
    document = {
        "ok": d.ok,
        "api": _report_dict(d.api),
        "cells": [_report_dict(c) for c in d.cells],
        "notes": _notes(d),
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2).decode()


def run_doctor(
    settings: Settings, *, as_json: bool, orders: Sequence[ListingOrder], timeout_s: float
) -> int:
    """Diagnose, print, and return the exit status."""
    diagnosis = asyncio.run(
        diagnose(
            settings.api_database_url,
            _static_cells(settings),
            orders,
            timeout_s,
        )
    )
    print(render_json(diagnosis) if as_json else render_text(diagnosis))
    return 0 if diagnosis.ok else 1


# --- cellgate cells ----------------------------------------------------------------------------


def breakers_from_readyz(document: object) -> dict[str, str]:
    """Breaker state per cell label from a gateway's ``/readyz`` document (pure)."""
    checks = document.get("checks", {}) if isinstance(document, dict) else {}
    out: dict[str, str] = {}
    for name, entries in checks.items():
        if name.startswith("cell:") and entries and isinstance(entries[0], dict):
            out[name.removeprefix("cell:")] = str(entries[0].get("breaker", "-"))
    return out


def render_cells(d: Diagnosis, breakers: dict[str, str] | None, as_json: bool) -> str:
    """One row per cell: name, uuid, reachable, latency, instances, breaker state (from a
    running gateway's ``/readyz``; ``-`` without one — breakers live in the gateway)."""
    rows = [
        {
            "name": c.name,
            "uuid": c.uuid,
            "reachable": c.reachable,
            "disabled": c.disabled,
            "latency_ms": None if c.latency_ms is None else round(c.latency_ms, 3),
            "instances": c.instances,
            "breaker": (breakers or {}).get(c.name),
            "error": c.errors[0] if c.errors else None,
        }
        for c in d.cells
    ]
    if as_json:
        return orjson.dumps({"cells": rows}, option=orjson.OPT_INDENT_2).decode()
    table = [["cell", "uuid", "reachable", "latency_ms", "instances", "breaker"]]
    for row in rows:
        latency = row["latency_ms"]
        table.append(
            [
                f"{row['name']}{' (disabled)' if row['disabled'] else ''}",
                str(row["uuid"] or "-"),
                "yes" if row["reachable"] else "no",
                "-" if latency is None else f"{latency:.1f}",
                "-" if row["instances"] is None else str(row["instances"]),
                str(row["breaker"] or "-"),
            ]
        )
    lines = _columns(table)
    lines += [f"  {row['name']}: {row['error']}" for row in rows if row["error"]]
    if not d.api.reachable:
        lines.append("the API database is unreachable: cells unknown")
    return "\n".join(lines)


def _readyz(gateway: str, timeout_s: float) -> dict[str, str]:
    """Breaker states from ``<gateway>/readyz`` (stdlib HTTP: a 503 still has the body)."""
    url = f"{gateway.rstrip('/')}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
    return breakers_from_readyz(json.loads(body))


def run_cells(settings: Settings, *, as_json: bool, gateway: str | None, timeout_s: float) -> int:
    """``cellgate cells``: print the table; exit 1 when the API database or a cell is
    unreachable (or the gateway named by ``gateway`` cannot be asked)."""

    async def gather() -> tuple[Diagnosis, dict[str, str] | None, str | None]:
        diagnosis = await diagnose(
            settings.api_database_url, _static_cells(settings), (), timeout_s
        )
        if gateway is None:
            return diagnosis, None, None
        try:
            return diagnosis, await asyncio.to_thread(_readyz, gateway, timeout_s), None
        except (OSError, ValueError) as exc:
            return diagnosis, None, f"could not read {gateway}/readyz: {exc}"

    diagnosis, breakers, problem = asyncio.run(gather())
    print(render_cells(diagnosis, breakers, as_json))
    if problem is not None:
        print(problem, file=sys.stderr)
    healthy = diagnosis.api.reachable and all(c.reachable for c in diagnosis.cells)
    return 0 if healthy and problem is None else 1
