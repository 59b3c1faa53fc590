"""``cellgate doctor``: run :func:`cells.doctor.diagnose` on the configured databases and
print it, as plain columns for a terminal or as JSON (``--json``).

Exit status 0 when the API database and every reachable cell pass the schema check, else 1.
Unreachable cells do not fail it: they are outages, which the gateway handles per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import orjson

from cells.doctor import DatabaseReport, Diagnosis, diagnose
from cells.indexes import ListingOrder, Serving
from cells.registry import Cell
from gateway.settings import Settings

__all__ = ["render_json", "render_text", "run_doctor"]


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
    rows = [["database", "reachable", "latency_ms", "instances", "collation", "schema"]]
    for r in (d.api, *d.cells):
        rows.append(
            [
                r.name + (" (disabled)" if r.disabled else ""),
                "yes" if r.reachable else "no",
                "-" if r.latency_ms is None else f"{r.latency_ms:.1f}",
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
            "PostgreSQL sorts the ties; missing: none does)"
        )
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


def _report_dict(r: DatabaseReport) -> dict[str, object]:
    return {
        "name": r.name,
        "uuid": r.uuid,
        "reachable": r.reachable,
        "disabled": r.disabled,
        "errors": list(r.errors),
        "latency_ms": None if r.latency_ms is None else round(r.latency_ms, 3),
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
