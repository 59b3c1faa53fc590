"""Where pagination state lives in the store: the key layout.

Frontiers and pages were ``v1:page`` and ``v1:body``; ``v2`` names each after what it
holds, and a replica of either version never reads the other's values as its own. Values
are opaque bytes here; what a walk's fingerprint, frontier and frontier bytes are
is :mod:`cells.walk`'s business.
"""

from __future__ import annotations

__all__ = ["breaker_key", "frontier_key", "page_key"]


def frontier_key(prefix: str, fp: str, marker: str) -> str:
    """``<prefix>:v2:frontier:{<fp>}:<marker>``: a walk's frontier after ``marker``; the
    hash tag keeps a walk on one cluster slot."""
    return f"{prefix}:v2:frontier:{{{fp}}}:{marker}"


def page_key(prefix: str, fp: str) -> str:
    """``<prefix>:v3:page:{<fp>}``: the short-lived rendered page of one exact request (v3:
    its kept headers, then the body; ``gateway.pagecache``)."""
    return f"{prefix}:v3:page:{{{fp}}}"


def breaker_key(prefix: str, cell_uuid: str) -> str:
    """``<prefix>:v1:breaker:{<prefix>}:<cell uuid>``: a cell found failing, shared between
    replicas; one hash tag for every cell, so one ``MGET`` reads them all on a cluster."""
    return f"{prefix}:v1:breaker:{{{prefix}}}:{cell_uuid}"
