"""Run profiles (quick, full), the scenarios every phase measures, and database names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.auth import NOAUTH_ROLES, Principal

Who = Literal["admin", "demo"]
ServerName = Literal["sharded", "unsharded"]
SystemName = Literal["sharded", "unsharded", "nova"]

SERVER_NAMES: tuple[ServerName, ...] = ("sharded", "unsharded")
SYSTEM_NAMES: tuple[SystemName, ...] = ("nova", "sharded", "unsharded")  # as reported
WHOS: tuple[Who, ...] = ("admin", "demo")
TOKENS: dict[Who, str] = {"admin": "admin:admin", "demo": "demo:demo"}
PRINCIPALS: dict[Who, Principal] = {
    "admin": Principal("admin", "admin", True, NOAUTH_ROLES | {"admin"}),
    "demo": Principal("demo", "demo", False, NOAUTH_ROLES),
}
LIMITS = (100, 1000)
SCENARIOS: list[tuple[Who, int]] = [(who, limit) for who in WHOS for limit in LIMITS]


def scenario_key(who: Who, limit: int) -> str:
    """The key of a first-page scenario in the results (``admin/100``)."""
    return f"{who}/{limit}"


@dataclass(frozen=True)
class Profile:
    """How much of everything one run does."""

    name: str
    instances: int
    warmup: int  # requests per server/system before each measured scenario
    http_n: dict[int, int]  # sequential first-page samples per server, per limit
    inproc_n: dict[int, int]  # in-process first-page samples per system, per limit
    walk_pages: int
    walk_limit: int
    walk_reps: int
    inproc_walk_reps: int
    tput_s: float
    tput_warmup_s: float
    offset_depths: tuple[int, ...]
    offset_reps: int
    locust_s: int
    locust_servers: tuple[ServerName, ...]
    profile_s: float
    clients: int
    phase_cap_s: float  # a scenario stops sampling after this long (it keeps >= 5 samples)
    max_s: float


QUICK = Profile(
    name="quick",
    instances=4_000,
    warmup=2,
    http_n={100: 10, 1000: 5},
    inproc_n={100: 6, 1000: 3},
    walk_pages=3,
    walk_limit=1000,
    walk_reps=1,
    inproc_walk_reps=1,
    tput_s=1.5,
    tput_warmup_s=0.3,
    offset_depths=(0, 1_000, 2_500),
    offset_reps=2,
    locust_s=2,
    locust_servers=("sharded",),
    profile_s=0.0,
    clients=2,
    phase_cap_s=10.0,
    max_s=240.0,
)
FULL = Profile(
    name="full",
    instances=400_000,
    warmup=15,
    http_n={100: 200, 1000: 80},
    inproc_n={100: 60, 1000: 25},
    walk_pages=20,
    walk_limit=1000,
    walk_reps=3,
    inproc_walk_reps=2,
    tput_s=15.0,
    tput_warmup_s=1.0,
    offset_depths=(0, 1_000, 10_000, 50_000, 100_000, 200_000, 300_000),
    offset_reps=7,
    locust_s=15,
    locust_servers=("sharded", "unsharded"),
    profile_s=10.0,
    clients=8,
    phase_cap_s=45.0,
    max_s=14 * 60.0,
)


@dataclass(frozen=True)
class Layout:
    """Database names of one run: 8-cell ("sharded") and 1-cell ("unsharded") sets."""

    base_url: str
    prefix: str

    def url(self, db: str) -> str:
        return f"{self.base_url}/{db}"

    @property
    def api8(self) -> str:
        return f"{self.prefix}_api8"

    @property
    def cells8(self) -> list[str]:
        return [f"{self.prefix}8_cell{n}" for n in range(1, 9)]

    @property
    def api1(self) -> str:
        return f"{self.prefix}_api1"

    @property
    def cells1(self) -> list[str]:
        return [f"{self.prefix}1_cell1"]

    @property
    def all_dbs(self) -> list[str]:
        return [self.api8, *self.cells8, self.api1, *self.cells1]

    def dbs_of(self, server: ServerName) -> frozenset[str]:
        """The databases one gateway reads (whose PostgreSQL backends it costs)."""
        if server == "sharded":
            return frozenset([self.api8, *self.cells8])
        return frozenset([self.api1, *self.cells1])


@dataclass(frozen=True)
class FrontierStore:
    """Where the gateways keep merge frontiers (``--store``): in-process, or Redis."""

    kind: Literal["memory", "redis"]
    redis_url: str
    redis_prefix: str

    @property
    def url(self) -> str | None:
        """``redis_url`` for the gateways' settings, None for the in-process store."""
        return self.redis_url if self.kind == "redis" else None

    def describe(self) -> str:
        if self.kind == "redis":
            return f"Redis ({self.redis_url}, key prefix `{self.redis_prefix}`)"
        return "the in-process store"
