"""Start-up and shutdown: build engines and the registry into :class:`AppState`, dispose."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cache import SingleFlight, create_store
from cells import (
    ApiDatabase,
    Cell,
    CellRows,
    CellSession,
    CellTarget,
    CellTimedOut,
    EngineOptions,
    create_engine_for,
)
from cells.breaker import Breaker
from cells.schema import api_metadata, cell_metadata
from cells.schemacheck import SchemaMismatch, Unreachable, check_cell, check_schema
from gateway.metrics import Metrics
from gateway.settings import Settings
from gateway.state import AppState, ProjectCells

if TYPE_CHECKING:
    from gateway.keystone import KeystoneValidator

__all__ = ["build_state", "check_schemas"]

log = logging.getLogger(__name__)


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


async def _warm(target: CellTarget) -> bool:
    """Open one connection per cell at start-up, so SQLAlchemy's first-connect dialect
    set-up (several round trips) is not paid inside the first request's cell deadline.
    A cell that cannot be reached now counts against its breaker (a hung one opens it, so
    the first request does not wait for it) and is otherwise handled per request."""
    session = CellSession(target.cell, target.engine, target.timeout_s)
    try:
        outcome = await session.fetch(select(literal(1)), 2, probe=False)
    finally:
        await session.close()
    if not isinstance(outcome, CellRows):
        log.warning("cell %s not reachable at start-up: %s", target.cell.label, outcome)
        target.breaker.record_failure(timed_out=isinstance(outcome, CellTimedOut))
        return False
    return True


async def check_schemas(
    api_engine: AsyncEngine, targets: Sequence[CellTarget], timeout_s: float
) -> None:
    """Raise :class:`SchemaMismatch` naming every missing table and column of the API
    database and of ``targets`` (the reachable cells). A cell that stops answering during
    the check is an outage, handled per request, not a mismatch."""
    async with asyncio.timeout(timeout_s):
        problems = await check_schema(api_engine, api_metadata, "API database")
    outcomes = await asyncio.gather(
        *(check_cell(t.engine, cell_metadata, f"cell {t.cell.label}", timeout_s) for t in targets)
    )
    for target, outcome in zip(targets, outcomes, strict=True):
        match outcome:
            case Unreachable(reason):
                log.warning("cell %s: schema not checked: %s", target.cell.label, reason)
            case list():
                problems.extend(outcome)
    if problems:
        raise SchemaMismatch(problems)


def _token_validator(settings: Settings) -> KeystoneValidator | None:
    if settings.auth_mode != "keystone":
        return None
    # Imported here: keystoneauth1 is needed only in this mode (the ``keystone`` extra).
    try:
        from gateway.keystone import KeystoneValidator
    except ImportError as exc:
        raise RuntimeError(f"auth_mode=keystone needs cellgate[keystone]: {exc}") from exc
    return KeystoneValidator(settings)


@asynccontextmanager
async def build_state(settings: Settings) -> AsyncIterator[AppState]:
    """Open the API DB and one engine per cell, check their tables and columns (unless
    ``check_schema_at_startup`` is off: :class:`~cells.schemacheck.SchemaMismatch`), and
    dispose them all on exit."""
    options = _engine_options(settings)
    engines: list[AsyncEngine] = []
    try:
        api_engine = create_engine_for(settings.api_database_url, options, "API database")
        engines.append(api_engine)
        connection = settings.database_connection
        api = ApiDatabase(api_engine, connection.get_secret_value() if connection else None)
        cells = await _static_cells(settings, api) if settings.cells else await api.load_cells()
        targets: dict[int, CellTarget] = {}
        for cell in cells:
            engine = create_engine_for(cell.url, options, f"cell {cell.label}")
            engines.append(engine)
            breaker = Breaker(settings.breaker_failures, settings.breaker_cooldown_s)
            targets[cell.id] = CellTarget(cell, engine, settings.cell_timeout_s, breaker)
        log.info("serving %d cells: %s", len(cells), ", ".join(c.label for c in cells))
        reachable = await asyncio.gather(*(_warm(t) for t in targets.values()))
        if settings.check_schema_at_startup:
            live = [t for t, up in zip(targets.values(), reachable, strict=True) if up]
            await check_schemas(api_engine, live, settings.cell_timeout_s)
        metrics = Metrics()
        store = create_store(
            settings.redis_url,
            cluster=settings.redis_cluster,
            op_timeout_s=settings.redis_timeout_s,
            connect_timeout_s=settings.redis_connect_timeout_s,
            cooldown_s=settings.redis_cooldown_s,
            max_memory_entries=settings.memory_store_entries,
            max_memory_bytes=settings.memory_store_max_bytes,
            hooks=metrics.redis,
        )
        tokens = _token_validator(settings)
        project_cells = ProjectCells(settings.project_cells_ttl_s)
        try:
            yield AppState(
                settings=settings,
                api=api,
                api_target=CellTarget(
                    Cell(id=0, uuid="", name="api", url=settings.api_database_url),
                    api_engine,
                    settings.cell_timeout_s,
                ),
                cells=cells,
                targets=targets,
                project_cells=project_cells,
                store=store,
                flight=SingleFlight(),
                metrics=metrics,
                tokens=tokens,
            )
        finally:
            await project_cells.close()
            await store.close()
            if tokens is not None:
                tokens.close()
    finally:
        for engine in engines:
            # A frozen cell must not hang shutdown: give up on its connections.
            try:
                async with asyncio.timeout(2.0):
                    await engine.dispose()
            except TimeoutError:
                log.warning("gave up disposing an engine after 2 s")
