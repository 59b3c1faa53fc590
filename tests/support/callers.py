"""Callers as the auth modes build them (roles, ``is_admin`` from Nova's default policy)
and their listing grants, for tests of request parsing and views."""

from __future__ import annotations

from gateway.auth import NOAUTH_ROLES, Principal, principal
from gateway.policy import ListGrants, Policy

__all__ = ["ADMIN", "DEFAULT_POLICY", "USER", "caller", "grants"]

DEFAULT_POLICY = Policy()
"""Nova 34's defaults, no policy file."""


def caller(user: str, project: str, roles: frozenset[str] = NOAUTH_ROLES) -> Principal:
    """A caller with ``roles``, judged by :data:`DEFAULT_POLICY`."""
    return principal(DEFAULT_POLICY, user, project, roles)


def grants(who: Principal, *, detail: bool = False) -> ListGrants:
    """What :data:`DEFAULT_POLICY` grants ``who`` in a listing."""
    return DEFAULT_POLICY.listing(who, detail=detail)


ADMIN = caller("admin", "admin", NOAUTH_ROLES | {"admin"})
USER = caller("demo", "demo")
