"""Who is asking: a :class:`Principal` from the request, in one of four modes.

- ``noauth`` (demo, tests): ``X-Auth-Token: user:project`` (a bare ``name`` means
  ``name:name``, as Nova's noauth) with the roles ``reader`` and ``member``, and ``admin``
  too in the project ``admin``.
- ``jwt``: a signed token (PyJWT) with ``exp``, ``project_id``, ``sub`` or ``user_id``,
  and ``roles`` claims. With ``jwt_audience`` or ``jwt_issuer`` set, the ``aud`` or ``iss``
  claim is required and must match.
- ``trusted-headers``: behind a proxy that already validated Keystone tokens, read
  ``X-Project-Id``, ``X-User-Id`` and ``X-Roles``. Off unless configured, since anyone who
  reaches the gateway directly could forge them.
- ``keystone``: Keystone validates the token (:mod:`gateway.keystone`, asynchronous and
  cached, behind the :class:`TokenValidator` interface that the app state holds).

What the caller may do is Nova's policy's to say (:mod:`gateway.policy`), evaluated on
these roles; :attr:`Principal.is_admin` is its ``context_is_admin`` rule.

A 401 carries ``WWW-Authenticate: Keystone uri="..."``, the challenge keystonemiddleware
sends in front of Nova, so clients know where to authenticate
(:func:`www_authenticate`): the ``www_authenticate_uri`` setting when set, else in
``keystone`` mode ``keystone_auth_url``, else ``<base URL>/identity/v3`` — the identity
discovery document this gateway serves, with the base URL from ``public_base_url`` or the
request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import jwt

from gateway.errors import Unauthorized
from gateway.policy import Policy
from gateway.settings import Settings

__all__ = [
    "NOAUTH_ROLES",
    "Principal",
    "TokenValidator",
    "auth_token",
    "authenticate",
    "principal",
    "www_authenticate",
]

NOAUTH_ROLES = frozenset({"reader", "member"})
"""A ``noauth`` caller's roles (``admin`` added in the project ``admin``)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller: a user in a project with roles. ``is_admin`` is Nova's
    ``context.is_admin``, the policy's ``context_is_admin`` rule (see :func:`principal`)."""

    user_id: str
    project_id: str
    is_admin: bool
    roles: frozenset[str] = frozenset()
    is_admin_project: bool = True

    @property
    def credentials(self) -> dict[str, object]:
        """oslo.context's policy values of a project-scoped token."""
        return {
            "user_id": self.user_id,
            "project_id": self.project_id,
            "roles": sorted(self.roles),
            "is_admin_project": self.is_admin_project,
            "system_scope": None,
            "domain_id": None,
        }


def principal(
    policy: Policy,
    user_id: str,
    project_id: str,
    roles: frozenset[str],
    *,
    is_admin_project: bool = True,
) -> Principal:
    """The caller, ``is_admin`` decided by ``policy``."""
    partial = Principal(user_id, project_id, False, roles, is_admin_project)
    return Principal(
        user_id, project_id, policy.is_admin(partial.credentials), roles, is_admin_project
    )


class TokenValidator(Protocol):
    """Turns a token into a :class:`Principal` by asking a service (``keystone`` mode)."""

    async def principal(self, token: str) -> Principal:
        """The caller, or :class:`Unauthorized` (or another client-visible error)."""
        ...


def _noauth(token: str, policy: Policy) -> Principal:
    user, _, project = token.partition(":")
    project = project or user
    if not user or not project:
        raise Unauthorized("Authentication required")
    roles = NOAUTH_ROLES | {"admin"} if project == "admin" else NOAUTH_ROLES
    return principal(policy, user, project, roles)


def auth_token(headers: Mapping[str, str]) -> str:
    """The request's ``X-Auth-Token``, or :class:`Unauthorized`."""
    token = headers.get("x-auth-token", "").strip()
    if not token:
        raise Unauthorized("Authentication required")
    return token


def _jwt(token: str, settings: Settings, policy: Policy) -> Principal:
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
    return principal(policy, user, project, frozenset(str(role) for role in roles))


def _trusted(headers: Mapping[str, str], policy: Policy) -> Principal:
    project = headers.get("x-project-id", "")
    user = headers.get("x-user-id", "")
    if not project or not user:
        raise Unauthorized("Authentication required")
    roles = {role.strip() for role in headers.get("x-roles", "").split(",")} - {""}
    return principal(policy, user, project, frozenset(roles))


def authenticate(headers: Mapping[str, str], settings: Settings, policy: Policy) -> Principal:
    """The caller of a request, or :class:`Unauthorized` (every mode but ``keystone``,
    whose :class:`TokenValidator` is awaited instead)."""
    match settings.auth_mode:
        case "trusted-headers":
            return _trusted(headers, policy)
        case "jwt":
            return _jwt(auth_token(headers), settings, policy)
        case "noauth":
            return _noauth(auth_token(headers), policy)
        case "keystone":
            raise TypeError("auth_mode=keystone is served by a TokenValidator")


def www_authenticate(settings: Settings, base_url: str) -> str:
    """The ``WWW-Authenticate`` challenge of a 401 (see the module docstring)."""
    uri = settings.www_authenticate_uri
    if uri is None and settings.auth_mode == "keystone":
        uri = settings.keystone_auth_url
    uri = uri or f"{base_url.rstrip('/')}/identity/v3"
    return f'Keystone uri="{uri}"'
