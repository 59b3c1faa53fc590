"""The ``keystone`` auth mode: ``X-Auth-Token`` validated by Keystone, as keystonemiddleware
does in front of Nova.

A service user (keystoneauth1 ``Password``, e.g. ``nova`` in the ``service`` project) asks
``GET /v3/auth/tokens`` with the caller's token in ``X-Subject-Token``, on the identity
endpoint of its catalog (``keystone_interface``, ``keystone_region_name``). The answer:

- 200: the token's user, project, roles and expiry. A project-scoped token is a
  :class:`~gateway.auth.Principal` with the token's roles (Keystone lists implied roles
  too: ``admin`` implies ``member`` implies ``reader``), whose rights are Nova's policy's
  (:mod:`gateway.policy`). ``is_admin_project`` is passed on to the policy (keystonemiddleware
  reads a missing flag as true); Nova's defaults do not consult it. Unscoped, domain- and
  system-scoped tokens get 403, as Nova's project-scoped policies give them.
- 404 (unknown, expired or revoked token): 401.
- Anything else — Keystone unreachable or hung past ``keystone_timeout_s``, a 5xx, the
  service user itself rejected (401/403, logged as an error: the operator's to fix) — is
  Keystone's problem, not the caller's: 503 with ``Retry-After``, nothing cached.

A circuit breaker (:class:`cells.Breaker`, with the cells' ``breaker_failures`` and
``breaker_cooldown_s``) stands in front of Keystone: a call that missed the timeout, or
``breaker_failures`` failures in a row, open it, and while it is open new tokens get the 503
at once instead of each holding a thread for the timeout; after the cool-down one call
tries Keystone again. Cached tokens never reach it.

Answers are cached in :class:`TokenCache` under the token's SHA-256, until the token
expires but at most ``keystone_cache_max_ttl_s`` (keystonemiddleware's ``token_cache_time``:
a revoked token keeps working that long), LRU-bounded by ``keystone_cache_size``; a 404 for
:data:`INVALID_TTL_S`. While Keystone is down, cached tokens keep working. Concurrent
requests with one uncached token share one validation. keystoneauth1 is synchronous: calls
run on a small thread pool of their own, so a slow Keystone never blocks the event loop nor
starves other threaded work.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from cachetools import TLRUCache
from keystoneauth1 import exceptions as ksa_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import generic

from cache import SingleFlight
from cells import Breaker, BreakerState
from gateway.auth import Principal, principal
from gateway.errors import Forbidden, ServiceUnavailable, Unauthorized
from gateway.policy import Policy
from gateway.settings import Settings

__all__ = [
    "INVALID_TTL_S",
    "InvalidToken",
    "KeystoneToken",
    "KeystoneValidator",
    "TokenCache",
    "parse_token",
    "to_principal",
]

log = logging.getLogger(__name__)

INVALID_TTL_S = 30.0
"""How long a token Keystone did not know stays refused without asking again: a flood of
bad tokens costs Keystone one call each per this period."""
_THREADS = 8  # concurrent validations; more callers wait in line (within their timeout)


@dataclass(frozen=True, slots=True)
class KeystoneToken:
    """What a valid token says; ``project_id`` is ``None`` unless it is project-scoped."""

    user_id: str
    project_id: str | None
    roles: frozenset[str]
    is_admin_project: bool
    expires_at: float  # seconds since the epoch


@dataclass(frozen=True, slots=True)
class InvalidToken:
    """Keystone does not know the token (unknown, expired or revoked)."""


Validation = KeystoneToken | InvalidToken


def parse_token(body: object) -> KeystoneToken:
    """The ``token`` of a ``GET /v3/auth/tokens`` answer; :class:`ValueError` if malformed."""
    try:
        token = body["token"]  # type: ignore[index]  # JSON of any shape: a malformed body raises, made a ValueError below
        user_id = token["user"]["id"]
        project = token.get("project")
        project_id = project["id"] if project is not None else None
        roles = frozenset(str(role["name"]) for role in token.get("roles", []))
        is_admin_project = token.get("is_admin_project", True)
        expires = datetime.fromisoformat(token["expires_at"])
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ValueError(f"not a Keystone token: {exc!r}") from exc
    if not isinstance(user_id, str) or not isinstance(is_admin_project, bool):
        raise ValueError("not a Keystone token: user id or is_admin_project")
    if project_id is not None and not isinstance(project_id, str):
        raise ValueError("not a Keystone token: project id")
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)  # Keystone writes UTC, with or without "Z"
    return KeystoneToken(user_id, project_id, roles, is_admin_project, expires.timestamp())


def to_principal(token: KeystoneToken, policy: Policy) -> Principal:
    """The caller a valid token names; :class:`Forbidden` unless it is project-scoped."""
    if token.project_id is None:
        raise Forbidden("The token is not scoped to a project; a project-scoped token is needed.")
    return principal(
        policy,
        token.user_id,
        token.project_id,
        token.roles,
        is_admin_project=token.is_admin_project,
    )


class TokenCache:
    """Validations by token hash: each until its own expiry (capped), LRU-bounded
    (cachetools' ``TLRUCache``: a per-entry expiry plus least-recently-used eviction)."""

    def __init__(
        self, max_entries: int, max_ttl_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        self.max_entries = max_entries
        self.max_ttl_s = max_ttl_s
        self._entries: TLRUCache[str, Validation] = TLRUCache(
            maxsize=max_entries, ttu=self._until, timer=clock
        )

    def _until(self, _key: str, validation: Validation, now: float) -> float:
        match validation:
            case KeystoneToken(expires_at=expires_at):
                return min(expires_at, now + self.max_ttl_s)
            case InvalidToken():
                return now + min(INVALID_TTL_S, self.max_ttl_s)

    def __len__(self) -> int:
        self._entries.expire()
        return len(self._entries)

    def get(self, key: str) -> Validation | None:
        """The cached validation, or ``None`` when absent or expired."""
        return self._entries.get(key)

    def put(self, key: str, validation: Validation) -> None:
        """Remember ``validation`` (not when already expired); evict the least recently used
        entries past the bound."""
        self._entries[key] = validation


def _session(settings: Settings) -> ks_session.Session:
    password = settings.keystone_password
    if settings.keystone_auth_url is None or password is None:  # Settings checks it too
        raise ValueError("auth_mode=keystone needs keystone_auth_url and keystone_password")
    user_domain_id = settings.keystone_user_domain_id
    project_domain_id = settings.keystone_project_domain_id
    auth = generic.Password(
        auth_url=settings.keystone_auth_url,
        username=settings.keystone_username,
        password=password.get_secret_value(),
        project_name=settings.keystone_project_name,
        # A domain id (kolla's nova.conf) wins over a name (devstack's).
        user_domain_id=settings.keystone_user_domain_id,
        user_domain_name=None if user_domain_id else settings.keystone_user_domain_name,
        project_domain_id=settings.keystone_project_domain_id,
        project_domain_name=None if project_domain_id else settings.keystone_project_domain_name,
    )
    return ks_session.Session(auth=auth, timeout=settings.keystone_timeout_s)


class KeystoneValidator:
    """Turns tokens into principals through Keystone (see the module docstring)."""

    def __init__(
        self, settings: Settings, policy: Policy, session: ks_session.Session | None = None
    ) -> None:
        self._session = session or _session(settings)
        self._endpoint: Mapping[str, object] = {
            "service_type": "identity",
            "interface": settings.keystone_interface,
            "region_name": settings.keystone_region_name,
            "version": (3, 0),
        }
        self._timeout_s = settings.keystone_timeout_s
        self._retry_after_s = settings.retry_after_s
        self._policy = policy
        self.cache = TokenCache(settings.keystone_cache_size, settings.keystone_cache_max_ttl_s)
        self._flight: SingleFlight[Validation] = SingleFlight()
        self.breaker = Breaker(settings.breaker_failures, settings.breaker_cooldown_s)
        self._pool = ThreadPoolExecutor(_THREADS, thread_name_prefix="keystone")

    @property
    def session(self) -> ks_session.Session:
        """The service user's session (its catalog finds Neutron: :mod:`gateway.neutron`)."""
        return self._session

    def close(self) -> None:
        """Stop the threads (a call still running is abandoned) and drop connections."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._session.session.close()  # requests.Session: older keystoneauth1 has no close()

    async def principal(self, token: str) -> Principal:
        """The caller ``token`` names: :class:`Unauthorized`, :class:`Forbidden` or
        :class:`ServiceUnavailable` otherwise."""
        match await self.validate(token):
            case KeystoneToken() as valid:
                return to_principal(valid, self._policy)
            case InvalidToken():
                raise Unauthorized("Authentication required")

    async def validate(self, token: str) -> Validation:
        """The cached validation of ``token``, else Keystone's (shared by concurrent callers)."""
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        return await self._flight.do(key, lambda: self._fetch(key, token))

    async def _fetch(self, key: str, token: str) -> Validation:
        if not self.breaker.allow():
            raise self._unavailable()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._timeout_s):
                validation = await loop.run_in_executor(self._pool, self._ask, token)
        except TimeoutError:
            log.warning("Keystone did not answer within %.1f s", self._timeout_s)
            self._failed(timed_out=True)
            raise self._unavailable() from None
        except ServiceUnavailable:
            self._failed(timed_out=False)
            raise
        self.breaker.record_success()
        self.cache.put(key, validation)
        return validation

    def _failed(self, *, timed_out: bool) -> None:
        was_open = self.breaker.state is BreakerState.OPEN
        self.breaker.record_failure(timed_out=timed_out)
        if not was_open and self.breaker.state is BreakerState.OPEN:
            log.warning(
                "Keystone's circuit breaker opened: new tokens get 503 for %.0f s",
                self.breaker.cooldown_s,
            )

    def _ask(self, token: str) -> Validation:
        """One ``GET /v3/auth/tokens`` (in a pool thread; keystoneauth1 blocks)."""
        try:
            response = self._session.get(
                "/auth/tokens?nocatalog",
                headers={"X-Subject-Token": token},
                endpoint_filter=dict(self._endpoint),
            )
            return parse_token(response.json())
        except ksa_exc.NotFound:
            return InvalidToken()
        except (ksa_exc.Unauthorized, ksa_exc.Forbidden) as exc:
            log.error("Keystone refused the gateway's service user: %s", exc)
            raise self._unavailable() from exc
        except (ksa_exc.ClientException, ValueError) as exc:
            log.warning("cannot validate a token with Keystone: %s", exc)
            raise self._unavailable() from exc

    def _unavailable(self) -> ServiceUnavailable:
        return ServiceUnavailable(
            "The identity service is unavailable: the token cannot be validated.",
            self._retry_after_s,
        )
