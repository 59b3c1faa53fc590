"""What a novabench run measured, as frozen dataclasses, and its ratios (pure: the report
and the JSON read nothing else)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import orjson

from cgbench.ratios import ratio
from cgbench.results import Latency, Machine

__all__ = ["DataInfo", "Figure", "Group", "NovaRun", "RunInfo", "Side", "statuses_text", "to_json"]

Group = Literal["first page", "walk", "one cell down"]
GROUPS: tuple[Group, ...] = ("first page", "walk", "one cell down")
TIMEOUT = 0
"""The status recorded for a request that got no answer within the client's timeout."""


def statuses_text(statuses: Mapping[int, int]) -> str:
    """``{200: 15}`` as ``15× 200``; several codes by code, ``timeout`` for :data:`TIMEOUT`."""
    parts = [f"{n}× {code or 'timeout'}" for code, n in sorted(statuses.items())]
    return ", ".join(parts) or "–"


@dataclass(frozen=True)
class Side:
    """One server's answers to one figure's requests."""

    latency: Latency
    """Per request (first pages, one cell down) or per walk (walks)."""
    statuses: dict[int, int]
    """Status code → answers (:data:`TIMEOUT`: none in time); a walk counts every page."""
    servers: int = 0
    """Servers listed by the last answer (a walk: by the whole last walk)."""
    unavailable: str = ""
    """The last answer's ``X-Cells-Unavailable`` (cellgate's; Nova has none)."""

    @property
    def all_ok(self) -> bool:
        return set(self.statuses) == {200}


@dataclass(frozen=True)
class Figure:
    """One comparison: the same requests to nova-api and to cellgate, alternating."""

    group: Group
    label: str
    nova: Side
    cellgate: Side
    same_ids: bool | None = None
    """Both listed the same servers in the same order (``None``: not comparable, e.g. an
    error on one side)."""

    @property
    def ratio(self) -> float:
        """nova-api's p50 ÷ cellgate's (NaN when either is missing)."""
        return ratio(self.nova.latency.p50, self.cellgate.latency.p50)


@dataclass(frozen=True)
class DataInfo:
    """The seeded databases."""

    instances: int
    per_cell: tuple[int, ...]
    visible: int
    """What an admin's all-tenants listing shows (not deleted)."""
    project: str
    project_visible: int
    down_cell: str
    down_cell_visible: int


@dataclass(frozen=True)
class RunInfo:
    """How the run was made: command, machine, servers, data, sampling."""

    started: str
    elapsed_s: float
    command: str
    workers: int
    nova_threads: int
    microversion: str
    samples: int
    warmup: int
    walks: int
    walk_pages: int
    walk_limit: int
    machine: Machine
    postgresql: dict[str, str]
    data: DataInfo
    load_before: str
    load_after: str
    seed_s: float


@dataclass(frozen=True)
class NovaRun:
    """Everything one run produced."""

    info: RunInfo
    figures: tuple[Figure, ...]

    def group(self, group: Group) -> list[Figure]:
        return [f for f in self.figures if f.group == group]


def _finite(value: object) -> object:
    """NaN and infinities as ``None`` (JSON has neither), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_finite(v) for v in value]
    return value


def to_json(run: NovaRun) -> bytes:
    """The run as indented JSON, every figure with its ratio."""
    figures = [{**dataclasses.asdict(f), "ratio": f.ratio} for f in run.figures]
    body = {"info": dataclasses.asdict(run.info), "figures": figures}
    return orjson.dumps(_finite(body), option=orjson.OPT_INDENT_2) + b"\n"
