"""FastAPI dependencies as ``Annotated`` aliases: state, caller, microversion."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.auth import Principal, auth_token, authenticate, www_authenticate
from gateway.errors import BadRequest, NotAcceptable, Unauthorized
from gateway.params import Version
from gateway.settings import Settings
from gateway.state import AppState
from gateway.versions import VersionNotAcceptable, negotiate

__all__ = ["Caller", "Microversion", "State", "base_url"]


# Async dependencies: FastAPI runs plain ``def`` ones in a worker thread (a hop per call).


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.cellgate.settings
    return settings


async def _state(request: Request) -> AppState:
    state: AppState = request.app.state.cellgate
    return state


async def _caller(request: Request) -> Principal:
    state: AppState = request.app.state.cellgate
    settings = state.settings
    try:
        if state.tokens is not None:
            return await state.tokens.principal(auth_token(request.headers))
        return authenticate(request.headers, settings, state.policy)
    except Unauthorized as exc:
        exc.headers.setdefault("WWW-Authenticate", www_authenticate(settings, base_url(request)))
        raise


async def _microversion(request: Request) -> Version:
    try:
        return negotiate(request.headers)
    except VersionNotAcceptable as exc:
        raise NotAcceptable(str(exc)) from None
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def base_url(request: Request) -> str:
    """The public root URL for links: configured, else the one the client used."""
    configured = _settings(request).public_base_url
    return (configured or str(request.base_url)).rstrip("/")


State = Annotated[AppState, Depends(_state)]
Caller = Annotated[Principal, Depends(_caller)]
Microversion = Annotated[Version, Depends(_microversion)]
