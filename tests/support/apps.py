"""The app driven in-process through its lifespan, with an httpx client bound to it."""

from __future__ import annotations

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


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app driven through its lifespan, with an httpx client bound to it."""
    app = create_app(settings)
    async with LifespanManager(app, **LIFESPAN_TIMEOUTS) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield client


@asynccontextmanager
async def app_and_client(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Like :func:`app_client`, also yielding the app (its state is ``app.state.cellgate``)."""
    app = create_app(settings)
    async with LifespanManager(app, **LIFESPAN_TIMEOUTS) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield app, client
