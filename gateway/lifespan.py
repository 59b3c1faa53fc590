"""Start-up and shutdown: build the API database's and each cell's client into
:class:`AppState`, dispose them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from cache import REDIS_FAILURES_TO_OPEN, RedisStore, SingleFlight, create_store
from cells import ApiDatabase, Breaker, Cell, CellClient, EngineOptions
from cells.schemacheck import check_schemas
from gateway.metrics import Metrics
from gateway.neutron import neutron_for
from gateway.policy import Policy, policy_for
from gateway.readahead import ReadAheads
from gateway.settings import Settings
from gateway.sharedbreakers import SharedBreakers
from gateway.state import AppState, ProjectCells
from gateway.zones import HostZones

if TYPE_CHECKING:
    from gateway.keystone import KeystoneValidator

__all__ = ["build_state"]

log = logging.getLogger(__name__)

# Each shutdown step's bound (the cells' own disposal gives up after 2 s, cells.client).
_SHUTDOWN_STEP_S = 5.0


def _engine_options(settings: Settings) -> EngineOptions:
    return EngineOptions(
        pool_size=settings.cell_pool_size,
        max_overflow=settings.cell_pool_max_overflow,
        pool_timeout_s=settings.cell_connect_timeout_s,
        connect_timeout_s=settings.cell_connect_timeout_s,
        command_timeout_s=settings.cell_timeout_s,
        plan_cache_mode=settings.cell_plan_cache_mode,
        statement_cache_size=settings.cell_statement_cache_size,
        parallel_workers=settings.cell_parallel_workers,
    )


async def _static_cells(settings: Settings, api: ApiDatabase) -> list[Cell]:
    """Cells from the configuration, keyed by their ``cell_mappings`` id when the API DB
    knows their uuid (so markers and per-project pruning work); otherwise by a negative id,
    and such a cell is always asked."""
    known = {cell.uuid: cell.id for cell in await api.load_cells()}
    return [
        Cell(id=known.get(c.uuid, -(i + 1)), uuid=c.uuid, name=c.name, url=c.database_url)
        for i, c in enumerate(settings.cells)
    ]


def _token_validator(settings: Settings, policy: Policy) -> KeystoneValidator | None:
    if settings.auth_mode != "keystone":
        return None
    # Imported here: keystoneauth1 is needed only in this mode (the ``keystone`` extra).
    try:
        from gateway.keystone import KeystoneValidator
    except ImportError as exc:
        raise RuntimeError(f"auth_mode=keystone needs cellgate[keystone]: {exc}") from exc
    return KeystoneValidator(settings, policy)


def _share_breakers(
    settings: Settings, store: object, clients: list[CellClient], metrics: Metrics
) -> asyncio.Task[None] | None:
    """The loop sharing what the cells' breakers find out with the other processes (with
    Redis only: without it each process stays on its own)."""
    if not isinstance(store, RedisStore) or settings.breaker_share_interval_s <= 0:
        return None
    sharing = SharedBreakers(
        store,
        clients,
        settings.redis_prefix,
        settings.breaker_share_interval_s,
        on_share=lambda label, direction: metrics.breaker_shares.labels(label, direction).inc(),
    )
    return asyncio.create_task(sharing.run(), name="cellgate-shared-breakers")


def _redis_breaker(settings: Settings, metrics: Metrics) -> Breaker:
    """The breaker in front of Redis (the cells' type: ``cache/`` is given it, see
    :mod:`cache.store`), its every move exported as ``cellgate_redis_breaker_state``."""
    breaker = Breaker(REDIS_FAILURES_TO_OPEN, settings.redis_cooldown_s)
    breaker.on_event = lambda: metrics.redis.breaker(breaker.state)
    return breaker


async def _bounded(what: str, step: Awaitable[object]) -> None:
    """One shutdown step, given up after :data:`_SHUTDOWN_STEP_S` with a warning naming it: a
    worker asked to stop must stop (its supervisor waits on it), and the cells' engines are
    still disposed after it."""
    try:
        async with asyncio.timeout(_SHUTDOWN_STEP_S):
            await step
    except TimeoutError:
        log.warning("shutdown: gave up on %s after %.0f s", what, _SHUTDOWN_STEP_S)


@asynccontextmanager
async def build_state(settings: Settings) -> AsyncIterator[AppState]:
    """Open the API DB's client and one client per cell, check their tables and columns
    (unless ``check_schema_at_startup`` is off: :class:`~cells.schemacheck.SchemaMismatch`),
    and dispose them all on exit."""
    options = _engine_options(settings)
    timeout_s = settings.cell_timeout_s
    # The instance counts are an aggregate over every mapping (cached, refreshed behind the
    # answer): bounded by the request's budget, not by one lookup's deadline.
    connection = settings.database_connection
    api = ApiDatabase.connect(
        settings.api_database_url,
        options,
        timeout_s,
        settings.request_budget_s,
        connection.get_secret_value() if connection is not None else None,
    )
    clients: dict[int, CellClient] = {}
    shared = settings.redis_url is not None and settings.breaker_share_interval_s > 0
    try:
        cells = await _static_cells(settings, api) if settings.cells else await api.load_cells()
        for cell in cells:
            clients[cell.id] = CellClient.connect(
                cell,
                options,
                timeout_s,
                breaker_failures=settings.breaker_failures,
                breaker_cooldown_s=settings.breaker_cooldown_s,
                breaker_spread=settings.breaker_cooldown_spread if shared else 0.0,
                ping_interval_s=settings.breaker_ping_interval_s,
            )
        log.info("serving %d cells: %s", len(cells), ", ".join(c.label for c in cells))
        reachable = await asyncio.gather(*(c.warm() for c in clients.values()))
        if settings.check_schema_at_startup:
            live = [c for c, up in zip(clients.values(), reachable, strict=True) if up]
            await check_schemas(api, live, timeout_s)
        metrics = Metrics()
        store = create_store(
            settings.redis_url,
            cluster=settings.redis_cluster,
            op_timeout_s=settings.redis_timeout_s,
            connect_timeout_s=settings.redis_connect_timeout_s,
            breaker=_redis_breaker(settings, metrics),
            max_memory_entries=settings.memory_store_entries,
            max_memory_bytes=settings.memory_store_max_bytes,
            fallback_max_bytes=settings.redis_fallback_max_bytes,
            hooks=metrics.redis,
        )
        policy = policy_for(settings)
        tokens = _token_validator(settings, policy)
        project_cells = ProjectCells(settings.project_cells_ttl_s)
        read_aheads = ReadAheads(
            settings.read_ahead_max,
            settings.cell_timeout_s,
            lambda result: metrics.read_ahead.labels(result).inc(),
            settings.frontier_max_rows,
            settings.frontier_fresh_s,
        )
        sharing = _share_breakers(settings, store, list(clients.values()), metrics)
        neutron = neutron_for(settings, None if tokens is None else tokens.session)
        try:
            yield AppState(
                settings=settings,
                api=api,
                cells=cells,
                clients=clients,
                project_cells=project_cells,
                store=store,
                flight=SingleFlight(),
                metrics=metrics,
                tokens=tokens,
                neutron=neutron,
                policy=policy,
                read_aheads=read_aheads,
                host_zones=HostZones(settings.host_zones_ttl_s),
            )
        finally:
            await _bounded("the read-aheads", read_aheads.close())
            if sharing is not None:
                sharing.cancel()
                await _bounded("breaker sharing", asyncio.gather(sharing, return_exceptions=True))
            if neutron is not None:
                await _bounded("the Neutron client", neutron.aclose())
            await _bounded("the cell-count refreshes", project_cells.close())
            await _bounded("the store", store.close())
            if tokens is not None:
                tokens.close()
    finally:
        # A frozen cell must not hang shutdown: each gives up on its connections after 2 s.
        await asyncio.gather(*(c.dispose() for c in clients.values()))
        await api.dispose()
