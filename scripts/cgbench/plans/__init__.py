"""``scripts/nova_plans``' measurements (issue #7): the settings every part shares.

:mod:`cgbench.plans.pages` (first and deep pages by index set and ``plan_cache_mode``),
:mod:`cgbench.plans.materialization` (late materialization vs one joined query) and
:mod:`cgbench.plans.report` (the Markdown report); ``scripts/nova_plans.py`` seeds the data
set, runs them and writes the report.
"""

from __future__ import annotations

import os
import statistics
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import get_args

from cells.registry import PlanCacheMode

__all__ = ["ADMIN", "LIMIT", "MODES", "PG_BASE", "PREFIX", "WARMUP", "p50_ms", "say"]

PG_BASE = os.environ.get("CELLGATE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
PREFIX = "cgplans"
MODES: tuple[PlanCacheMode, ...] = get_args(PlanCacheMode)
LIMIT = 100
WARMUP = 6  # > 5: PostgreSQL's "auto" decides between custom and generic after 5 runs
ADMIN = "admin:admin"


def say(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def p50_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1000
