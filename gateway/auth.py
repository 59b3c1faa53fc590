"""Who is asking: a :class:`Principal` from the request, in one of three modes.

- ``noauth`` (demo, tests): ``X-Auth-Token: user:project`` (a bare ``name`` means
  ``name:name``, as Nova's noauth); the project ``admin`` is an administrator.
- ``jwt``: a signed token (PyJWT) with ``exp``, ``project_id``, ``sub`` or ``user_id``,
  and ``roles`` claims; the role ``admin`` is an administrator. With ``jwt_audience`` or
  ``jwt_issuer`` set, the ``aud`` or ``iss`` claim is required and must match.
- ``trusted-headers``: behind a proxy that already validated Keystone tokens, read
  ``X-Project-Id``, ``X-User-Id`` and ``X-Roles``. Off unless configured, since anyone who
  reaches the gateway directly could forge them.

A 401 carries ``WWW-Authenticate: Keystone uri="..."``, the challenge keystonemiddleware
sends in front of Nova, so clients know where to authenticate
(:func:`www_authenticate`): the ``www_authenticate_uri`` setting when set, else
``<base URL>/identity/v3`` — the identity discovery document this gateway serves, with
the base URL from ``public_base_url`` or the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import jwt

from gateway.errors import Unauthorized
from gateway.settings import Settings

__all__ = ["Principal", "authenticate", "www_authenticate"]


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: a user in a project, maybe an administrator."""

    user_id: str
    project_id: str
    is_admin: bool


def _noauth(token: str) -> Principal:
    user, _, project = token.partition(":")
    project = project or user
    if not user or not project:
        raise Unauthorized("Authentication required")
    return Principal(user, project, project == "admin")


def _jwt(token: str, settings: Settings) -> Principal:
    if settings.jwt_secret is None:
        raise Unauthorized("Authentication required")
    required = ["exp"]
    if settings.jwt_audience is not None:
        required.append("aud")
    if settings.jwt_issuer is not None:
        required.append("iss")
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=settings.jwt_algorithms,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": required},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized("Authentication required") from exc
    project = claims.get("project_id")
    user = claims.get("user_id") or claims.get("sub")
    roles = claims.get("roles") or []
    if not isinstance(project, str) or not isinstance(user, str) or not isinstance(roles, list):
        raise Unauthorized("Authentication required")
    return Principal(user, project, "admin" in roles)


def _trusted(headers: Mapping[str, str]) -> Principal:
    project = headers.get("x-project-id", "")
    user = headers.get("x-user-id", "")
    if not project or not user:
        raise Unauthorized("Authentication required")
    roles = {role.strip() for role in headers.get("x-roles", "").split(",")}
    return Principal(user, project, "admin" in roles)


def authenticate(headers: Mapping[str, str], settings: Settings) -> Principal:
    """The caller of a request, or :class:`Unauthorized`."""
    if settings.auth_mode == "trusted-headers":
        return _trusted(headers)
    token = headers.get("x-auth-token", "").strip()
    if not token:
        raise Unauthorized("Authentication required")
    if settings.auth_mode == "jwt":
        return _jwt(token, settings)
    return _noauth(token)


def www_authenticate(settings: Settings, base_url: str) -> str:
    """The ``WWW-Authenticate`` challenge of a 401 (see the module docstring)."""
    uri = settings.www_authenticate_uri or f"{base_url.rstrip('/')}/identity/v3"
    return f'Keystone uri="{uri}"'
