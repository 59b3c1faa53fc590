"""All configuration, from ``CELLGATE_*`` environment variables and an optional TOML file.

Nothing else in the code base reads the environment: :class:`Settings` is built once (by the
CLI or a test) and passed to :func:`gateway.app.create_app`.

Over the house size on purpose: one field per option with its documentation, as one
``Settings`` class (STYLE: one Settings).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from cache.redisurl import SentinelRedis, parse_redis_url
from cells.registry import PlanCacheMode
from gateway.logs import LogFormat
from gateway.novaconf import NovaConfigSource, read_nova_config

__all__ = ["NeutronSettings", "Settings", "StaticCell", "load_settings"]

AuthMode = Literal["noauth", "jwt", "trusted-headers", "keystone"]
KeystoneInterface = Literal["public", "internal", "admin"]


class StaticCell(BaseModel):
    """A cell given in configuration instead of ``cell_mappings``."""

    name: str
    uuid: str
    database_url: str


class NeutronSettings(BaseModel):
    """How to reach Neutron (``nova.conf``'s ``[neutron]``): ``security_groups``
    (:mod:`gateway.neutron`: ``endpoint_override``, and password credentials for a token)."""

    model_config = ConfigDict(extra="forbid")

    auth_type: str | None = None
    auth_url: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    project_name: str | None = None
    user_domain_name: str | None = None
    user_domain_id: str | None = None
    project_domain_name: str | None = None
    project_domain_id: str | None = None
    region_name: str | None = None
    valid_interfaces: list[str] = Field(default_factory=lambda: ["internal", "public"])
    endpoint_override: str | None = None


class Settings(BaseSettings):
    """cellgate's configuration; see the README's configuration reference."""

    model_config = SettingsConfigDict(env_prefix="CELLGATE_", extra="forbid")

    api_database_url: str = Field(
        "sqlite:///./cellgate-data/api.db",
        description="The API database (cell_mappings, instance_mappings, flavors).",
    )
    database_connection: SecretStr | None = Field(
        None,
        description="Nova's [database] connection URL: fills templated cell_mappings URLs "
        "({scheme}://{username}:{password}@{hostname}/...), as Nova does.",
    )
    cells: list[StaticCell] = Field(
        default_factory=list,
        description="Static cell list; when empty, cells come from cell_mappings.",
    )
    redis_url: str | None = Field(
        None,
        description="Redis for pagination state: redis://, or Sentinel (tooz's "
        "redis://...?sentinel=NAME, or redis+sentinel://); unset = in-process.",
    )
    redis_cluster: bool = Field(False, description="Treat redis_url as a Redis Cluster seed node.")
    redis_prefix: str = Field("cellgate", description="Key prefix in Redis.")
    redis_timeout_s: float = Field(0.05, gt=0, description="Deadline of one Redis call.")
    redis_connect_timeout_s: float = Field(0.05, gt=0, description="Connect deadline for Redis.")
    redis_cooldown_s: float = Field(5.0, ge=0, description="Breaker pause after Redis fails.")
    frontier_ttl_s: float = Field(300.0, gt=0, description="Sliding TTL of a cached frontier.")
    frontier_fresh_s: float = Field(
        5.0,
        gt=0,
        description="How long after its rows were fetched a cached frontier is resumed "
        "from; older, the marker is resolved afresh, so a page never hides an instance "
        "created more than this long ago.",
    )
    frontier_max_rows: int = Field(
        4000, ge=0, description="Unreturned rows kept in a frontier, over all cells."
    )
    read_ahead_max: int = Field(
        64,
        ge=0,
        description="Frontier read-aheads in flight per worker (a walk's next page refilled "
        "in the background once it asked for a second page); 0 disables them.",
    )
    page_cache_ttl_s: float = Field(
        2.0, ge=0, description="TTL of identical-request page cache; 0 disables it."
    )
    coalesce_listings: bool = Field(
        True,
        description="Identical listings in flight share one fan-out; false: each runs its "
        "own (benchmarks of distinct requests).",
    )
    memory_store_entries: int = Field(
        10_000,
        ge=1,
        description="Bound of the in-process store (with Redis: of the copy kept while "
        "Redis does not answer).",
    )
    redis_fallback_max_bytes: int = Field(
        8 * 2**20,
        ge=0,
        description="With Redis: bytes of values each process keeps of what Redis failed to "
        "store, read while Redis does not answer (frontiers and pages); 0: none.",
    )
    memory_store_max_bytes: int = Field(
        64 * 2**20,
        ge=1,
        description="Bytes of values the in-process store keeps (least recently used first out).",
    )
    auth_mode: AuthMode = Field(
        "noauth", description="noauth (token user:project), jwt, trusted-headers, or keystone."
    )
    admin_role: str = Field(
        "admin",
        description="The role that makes a caller an administrator (jwt, "
        "trusted-headers, keystone).",
    )
    policy_file: Path | None = Field(
        None,
        description="The operator's Nova policy file (YAML or JSON, oslo.policy); unset = "
        "Nova's defaults. Re-read when it changes.",
    )
    keystone_auth_url: str | None = Field(
        None, description="Keystone's URL for the service user (auth_mode=keystone)."
    )
    keystone_username: str | None = Field(
        None, description="The service user validating tokens (auth_mode=keystone)."
    )
    keystone_password: SecretStr | None = Field(None, description="The service user's password.")
    keystone_project_name: str = Field("service", description="The service user's project.")
    keystone_user_domain_name: str = Field("Default", description="The service user's domain.")
    keystone_project_domain_name: str = Field(
        "Default", description="The domain of the service user's project."
    )
    keystone_user_domain_id: str | None = Field(
        None, description="The service user's domain by id (wins over its name)."
    )
    keystone_project_domain_id: str | None = Field(
        None, description="The service user's project's domain by id (wins over its name)."
    )
    keystone_interface: KeystoneInterface = Field(
        "internal", description="Which identity endpoint of the catalog validates tokens."
    )
    keystone_region_name: str | None = Field(
        None, description="The catalog region of that endpoint; unset = any."
    )
    keystone_timeout_s: float = Field(
        3.0, gt=0, description="Deadline of one token validation with Keystone."
    )
    keystone_cache_size: int = Field(10_000, ge=1, description="Validated tokens kept.")
    keystone_cache_max_ttl_s: float = Field(
        300.0,
        gt=0,
        description="Longest a validation is trusted (a token is also dropped when it "
        "expires); a revoked token keeps working up to this long.",
    )
    jwt_secret: SecretStr | None = Field(None, description="Key verifying JWTs (auth_mode=jwt).")
    jwt_algorithms: list[str] = Field(
        default_factory=lambda: ["HS256"], description="Accepted JWT algorithms."
    )
    jwt_audience: str | None = Field(
        None, description="Required JWT 'aud' claim (auth_mode=jwt); unset = not checked."
    )
    jwt_issuer: str | None = Field(
        None, description="Required JWT 'iss' claim (auth_mode=jwt); unset = not checked."
    )
    allow_insecure_noauth: bool = Field(
        False,
        description="Let auth_mode=noauth serve on a non-loopback address (trusted networks "
        "only: anyone reaching it can claim any project, admin included).",
    )
    www_authenticate_uri: str | None = Field(
        None,
        description="Identity URI a 401's WWW-Authenticate names; unset = <base>/identity/v3.",
    )
    public_base_url: str | None = Field(
        None, description="Base URL used in links; unset = derived from each request."
    )
    max_limit: int = Field(1000, ge=1, description="Default and maximum page size (Nova: 1000).")
    list_records_by_skipping_down_cells: bool = Field(
        True, description="Partial 200 when a cell is down; false: 503 instead (Nova's option)."
    )
    default_availability_zone: str = Field(
        "nova",
        description="The zone shown for a server on a host when its row names none "
        "(Nova's [DEFAULT] default_availability_zone).",
    )
    host_zones_ttl_s: float = Field(
        60.0,
        gt=0,
        description="How long a host's availability zone (from the API database's "
        "aggregates) is cached; while the API database cannot answer, the last known one "
        "is shown past it.",
    )
    service_down_time_s: float = Field(
        60.0,
        gt=0,
        description="A nova-compute service not seen up for longer is UNKNOWN in host_status "
        "(Nova's [DEFAULT] service_down_time).",
    )
    neutron: NeutronSettings | None = Field(
        None, description="How to reach Neutron (nova.conf's [neutron]) for security_groups."
    )
    per_project_cells: bool = Field(
        True,
        description="Ask only the cells holding the project's instances, and size first "
        "batches by each cell's share of them.",
    )
    project_cells_ttl_s: float = Field(
        5.0,
        ge=0,
        description="How long per-cell instance counts (per project, and for all) are cached; "
        "concurrent misses share one count, and the all-projects counts are served stale "
        "while one refresh runs.",
    )
    cell_timeout_s: float = Field(
        3.0, gt=0, description="Deadline for one call to one cell, or one API database lookup."
    )
    cell_connect_timeout_s: float = Field(
        2.0, gt=0, description="Connect and pool-wait deadline for a cell."
    )
    request_budget_s: float = Field(10.0, gt=0, description="Overall deadline of a listing.")
    breaker_failures: int = Field(
        2,
        ge=1,
        description="Consecutive errors that open a cell's breaker, or Keystone's (a "
        "timeout: one).",
    )
    breaker_cooldown_s: float = Field(
        5.0,
        ge=0,
        description="How long an open breaker skips its cell (or Keystone) before one probe.",
    )
    breaker_ping_interval_s: float = Field(
        1.0,
        ge=0,
        description="While a cell's breaker is open: how often the cell is pinged (SELECT 1) "
        "in the background; an answer ends the cool-down (the next request probes it), no "
        "answer restarts it, so no request waits on a cell that does not answer (0: no "
        "pings; a request probes after each cool-down).",
    )
    breaker_share_interval_s: float = Field(
        0.25,
        ge=0,
        description="With Redis: how often each process reads what its peers' breakers "
        "found out about the cells (its own news is sent at once; 0: each on its own).",
    )
    breaker_cooldown_spread: float = Field(
        0.5,
        ge=0,
        description="While breakers are shared: each opening's cool-down is drawn from "
        "[cooldown, cooldown x (1 + spread)], so peers do not all probe at once.",
    )
    neutron_url: str | None = Field(
        None,
        description="Neutron's URL, over neutron.endpoint_override: security_groups from its "
        "ports. Without either, a Keystone service user's catalog names it; without one, "
        'every server shows [{"name": "default"}].',
    )
    neutron_from_catalog: bool = Field(
        True, description="Without a Neutron URL, ask a Keystone service user's catalog for one."
    )
    neutron_timeout_s: float = Field(
        3.0, gt=0, description="Deadline for a page's Neutron calls (ports, security groups)."
    )
    cell_pool_size: int = Field(5, ge=1, description="Connections kept per cell.")
    cell_pool_max_overflow: int = Field(5, ge=0, description="Extra connections per cell.")
    cell_statement_cache_size: int = Field(
        64,
        ge=0,
        description="Prepared statements kept per cell connection (asyncpg's LRU; 0: none). "
        "Each costs ~12 KiB, so this bounds the pools' memory: connections x size x 12 KiB.",
    )
    cell_parallel_workers: int = Field(
        0,
        ge=0,
        description="PostgreSQL max_parallel_workers_per_gather of cell connections. 0: no "
        "parallel plans; a page's queries are small index scans, for which starting workers "
        "cost more than they save (measured: a detail page's side-data query 14 -> 2.6 ms).",
    )
    gc_gen0_threshold: int = Field(
        10_000,
        ge=0,
        description="Python's first-generation collection threshold while serving (Python's "
        "default is 700), and the objects alive after start-up are frozen out of collections. "
        "0: leave the collector as Python sets it.",
    )
    cell_plan_cache_mode: PlanCacheMode = Field(
        "force_custom_plan",
        description="PostgreSQL plan_cache_mode of cell connections (auto, force_custom_plan, "
        "force_generic_plan).",
    )
    check_schema_at_startup: bool = Field(
        True,
        description="Check the API DB's and every reachable cell's tables and columns at "
        "start-up; a missing one stops the gateway.",
    )
    keepalive_max_requests: int = Field(
        1000,
        ge=0,
        description="Requests served on one client connection before the answer closes it "
        "(nginx's keepalive_requests): clients reconnect and spread again over the workers, "
        "a restarted one included. 0: no limit.",
    )
    retry_after_s: int = Field(30, ge=1, description="Retry-After sent with a 503.")
    log_level: str = Field("INFO", description="Python logging level.")
    log_format: LogFormat = Field(
        "auto", description="Log lines as json, text, or auto (text on a terminal, else json)."
    )
    console: bool = Field(
        False,
        description="Serve the web console at /console (on in cellgate demo); its data "
        "comes from the API under the same auth.",
    )

    @model_validator(mode="after")
    def _deadlines_nest(self) -> Settings:
        if self.request_budget_s <= self.cell_timeout_s:
            raise ValueError("request_budget_s must be larger than cell_timeout_s")
        return self

    @model_validator(mode="after")
    def _redis_url_usable(self) -> Settings:
        # A Sentinel URL cellgate cannot use stops the configuration, not the first request.
        target = parse_redis_url(self.redis_url) if self.redis_url else None
        if isinstance(target, SentinelRedis) and self.redis_cluster:
            raise ValueError("redis_cluster cannot be used with a Sentinel URL")
        return self

    @model_validator(mode="after")
    def _keystone_configured(self) -> Settings:
        if self.auth_mode != "keystone":
            return self
        required = {
            "keystone_auth_url": self.keystone_auth_url,
            "keystone_username": self.keystone_username,
            "keystone_password": self.keystone_password,
        }
        if missing := [name for name, value in required.items() if not value]:
            raise ValueError(f"auth_mode=keystone needs {', '.join(missing)}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit arguments, then CELLGATE_* variables, then the TOML file.
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def load_settings(
    config_file: Path | None = None, nova_config: Sequence[Path] = (), /, **overrides: object
) -> Settings:
    """Settings from explicit overrides, the environment, ``config_file`` (TOML) and
    ``nova_config`` (``nova.conf`` files, :mod:`gateway.novaconf`), in that precedence."""
    if config_file is None and not nova_config:
        return Settings(**overrides)  # type: ignore[arg-type]  # **object overrides: pydantic validates each field at run time
    if config_file is not None and not config_file.is_file():
        raise FileNotFoundError(f"configuration file not found: {config_file}")
    nova = read_nova_config(nova_config) if nova_config else {}

    class FileSettings(Settings):
        model_config = SettingsConfigDict(**{**Settings.model_config, "toml_file": config_file})

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            toml = TomlConfigSettingsSource(settings_cls)
            return (init_settings, env_settings, toml, NovaConfigSource(settings_cls, nova))

    return FileSettings(**overrides)  # type: ignore[arg-type]  # **object overrides: pydantic validates each field at run time
