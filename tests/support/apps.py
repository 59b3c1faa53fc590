"""The app driven in-process through its lifespan, with an httpx client bound to it."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from gateway.app import create_app
from gateway.settings import Settings

__all__ = ["LIFESPAN_TIMEOUTS", "app_and_client", "app_client"]

# asgi-lifespan gives start-up 5 s by default; ours is bounded by the cells' deadlines (each
# cell's warm-up, then its schema check), which a cell behind the outage tests' delay proxy
# (several round trips of +200 ms each) or a loaded CI machine comes close to.
LIFESPAN_TIMEOUTS = {"startup_timeout": 60.0, "shutdown_timeout": 60.0}


def _task_stacks() -> str:
    """Every asyncio task's stack: where a start-up or shutdown past its bound is stuck."""
    out = io.StringIO()
    for task in asyncio.all_tasks():
        task.print_stack(file=out)
    return out.getvalue()


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[LifespanManager]:
    """asgi-lifespan's manager, whose timeout (start-up or shutdown past its bound) names the
    phase and carries every task's stack."""
    phase = "start-up"
    try:
        async with LifespanManager(app, **LIFESPAN_TIMEOUTS) as manager:
            phase = "the test"
            yield manager
            phase = "shutdown"
    except TimeoutError as exc:
        if phase == "the test":
            raise
        raise TimeoutError(f"the app's {phase} timed out; tasks:\n{_task_stacks()}") from exc


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app driven through its lifespan, with an httpx client bound to it."""
    app = create_app(settings)
    async with _lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield client


@asynccontextmanager
async def app_and_client(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Like :func:`app_client`, also yielding the app (its state is ``app.state.cellgate``)."""
    app = create_app(settings)
    async with _lifespan(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield app, client
