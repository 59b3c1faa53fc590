"""Where pagination state lives in the store: walk fingerprints and key layout.

Values are opaque bytes here; what a frontier holds and how it is encoded is
:mod:`cells.frontier`'s business.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import orjson

__all__ = ["fingerprint", "frontier_key", "page_key"]


def fingerprint(parts: Mapping[str, object]) -> str:
    """A stable hash of what makes two listings the same walk (scope, filters, order,
    cells, view). ``parts`` must be orjson-serialisable; keys are sorted."""
    blob = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


def frontier_key(prefix: str, fp: str, marker: str) -> str:
    """``<prefix>:v1:page:{<fp>}:<marker>``; the hash tag keeps a walk on one cluster slot."""
    return f"{prefix}:v1:page:{{{fp}}}:{marker}"


def page_key(prefix: str, fp: str) -> str:
    """The short-lived rendered-page cache key of one exact request (``fp``)."""
    return f"{prefix}:v1:body:{{{fp}}}"
