"""FastAPI dependencies as ``Annotated`` aliases: state, caller, microversion."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from gateway.auth import Principal, authenticate
from gateway.errors import BadRequest, NotAcceptable
from gateway.state import AppState
from gateway.versions import VersionNotAcceptable, negotiate

__all__ = ["Caller", "Microversion", "State", "base_url"]


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.cellgate
    return state


def _caller(request: Request) -> Principal:
    return authenticate(request.headers, _state(request).settings)


def _microversion(request: Request) -> tuple[int, int]:
    try:
        return negotiate(request.headers)
    except VersionNotAcceptable as exc:
        raise NotAcceptable(str(exc)) from None
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def base_url(request: Request) -> str:
    """The public root URL for links: configured, else the one the client used."""
    configured = _state(request).settings.public_base_url
    return (configured or str(request.base_url)).rstrip("/")


State = Annotated[AppState, Depends(_state)]
Caller = Annotated[Principal, Depends(_caller)]
Microversion = Annotated[tuple[int, int], Depends(_microversion)]
