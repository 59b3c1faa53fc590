"""The application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway.errors import install_error_handlers
from gateway.lifespan import build_state
from gateway.logs import RequestIdMiddleware
from gateway.routes import meta, servers
from gateway.settings import Settings

__all__ = ["create_app"]


def create_app(settings: Settings) -> FastAPI:
    """A gateway serving ``settings``; resources live in the lifespan, not in globals."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with build_state(settings) as state:
            app.state.cellgate = state
            yield

    app = FastAPI(
        title="cellgate",
        summary="Nova's server listing across cells",
        version="0.1.0",
        lifespan=lifespan,
        redirect_slashes=False,
    )
    install_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(meta.router)
    app.include_router(servers.router)
    return app
