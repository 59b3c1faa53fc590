"""What the page cache keeps of a rendered listing, and when a kept partial page may answer.

The page cache (``page_cache_ttl_s``, in the store under :func:`cache.page_key`) answers an
identical request with the body an earlier one rendered. A page that left cells out is
kept too, with its ``X-Cells-Unavailable`` header: while a cell is down, identical requests
would otherwise each ask every other cell again for the same partial answer (the chaos run
found the answers per second falling to a third of the healthy rate while a cell was out,
most of the difference being these requests). Such a page answers only while **every cell it
names is still skipped by this process's breaker** (:attr:`cells.CellClient.skipping`), that
is, only while a page computed now would leave out the same cells; once one of them may be
asked again (its cool-down over, a ping's answer, a peer's news), the page is computed
afresh, so a cached partial page never hides a cell that is back.

An entry is the extra headers as JSON, a newline, then the body (orjson's JSON has no raw
newline): ``{}`` for a complete page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import orjson

from cells import CellClient

__all__ = ["UNAVAILABLE", "pack", "still_down", "unpack"]

UNAVAILABLE = "X-Cells-Unavailable"
_KEPT = (UNAVAILABLE,)  # the headers a cached page answers with, beside the version's


def pack(body: bytes, headers: Mapping[str, str]) -> bytes:
    """The entry for ``body`` rendered with ``headers`` (only :data:`_KEPT` ones are kept)."""
    kept = {name: headers[name] for name in _KEPT if name in headers}
    return orjson.dumps(kept) + b"\n" + body


def unpack(entry: bytes) -> tuple[bytes, dict[str, str]] | None:
    """The body and extra headers of ``entry``; ``None`` for an entry of another shape."""
    head, sep, body = entry.partition(b"\n")
    if not sep:
        return None
    try:
        headers = orjson.loads(head)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(headers, dict):
        return None
    return body, {str(k): str(v) for k, v in headers.items()}


def still_down(headers: Mapping[str, str], clients: Iterable[CellClient]) -> bool:
    """Whether every cell ``headers`` name as unavailable is skipped right now (true for a
    complete page, which names none): a page may be kept, or answer, only then (a slow
    cell, or one that failed without opening its breaker, is asked again anyway)."""
    named = headers.get(UNAVAILABLE)
    if not named:
        return True
    skipping = {c.cell.label for c in clients if c.skipping}
    return all(label in skipping for label in named.split(","))
