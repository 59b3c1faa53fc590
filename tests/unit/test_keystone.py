"""The keystone auth mode's logic: token parsing, role mapping, the cache, and the
validator's outcomes with a scripted stand-in for keystoneauth1's session (no I/O; the
real Keystone is in tests/integration/test_keystone_live.py)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from keystoneauth1 import exceptions as ksa_exc
from keystoneauth1 import session as ks_session
from pydantic import ValidationError

from gateway.auth import Principal, authenticate, www_authenticate
from gateway.errors import Forbidden, ServiceUnavailable, Unauthorized
from gateway.keystone import (
    INVALID_TTL_S,
    InvalidToken,
    KeystoneToken,
    KeystoneValidator,
    TokenCache,
    parse_token,
    to_principal,
)
from gateway.policy import Policy
from gateway.settings import Settings

POLICY = Policy()
READER = frozenset({"member", "reader"})

EXPIRES = "2030-01-01T00:00:00.000000Z"
EXPIRES_TS = 1893456000.0


def _body(**token: object) -> dict[str, object]:
    base: dict[str, object] = {
        "user": {"id": "u1", "name": "demo", "domain": {"id": "default"}},
        "expires_at": EXPIRES,
        "project": {"id": "p1", "name": "demo", "domain": {"id": "default"}},
        "roles": [{"id": "r1", "name": "member"}, {"id": "r2", "name": "reader"}],
    }
    return {"token": {**base, **token}}


def _token(roles: frozenset[str] = frozenset({"member"}), **fields: Any) -> KeystoneToken:
    values: dict[str, Any] = {
        "user_id": "u1",
        "project_id": "p1",
        "roles": roles,
        "is_admin_project": True,
        "expires_at": EXPIRES_TS,
        **fields,
    }
    return KeystoneToken(**values)


# --- parsing and mapping ----------------------------------------------------------------


def test_parse_project_token() -> None:
    assert parse_token(_body()) == _token(frozenset({"member", "reader"}))


def test_parse_missing_is_admin_project_means_true() -> None:
    """keystonemiddleware's reading: Keystone omits it unless an admin project is set."""
    assert parse_token(_body()).is_admin_project
    assert not parse_token(_body(is_admin_project=False)).is_admin_project


def test_parse_unscoped_and_domain_scoped_have_no_project() -> None:
    unscoped = {"token": {"user": {"id": "u1"}, "expires_at": EXPIRES}}
    assert parse_token(unscoped).project_id is None
    domain = _body(project=None, domain={"id": "default", "name": "Default"})
    assert parse_token(domain).project_id is None


def test_parse_naive_expiry_is_utc() -> None:
    assert parse_token(_body(expires_at="2030-01-01T00:00:00.000000")).expires_at == EXPIRES_TS


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"token": None},
        {"token": {"user": {"id": "u1"}}},  # no expiry
        _body(expires_at="soon"),
        _body(user={"id": 7}),
        _body(project={"id": 7}),
        _body(is_admin_project="yes"),
    ],
)
def test_parse_rejects_malformed_answers(body: object) -> None:
    with pytest.raises(ValueError, match="not a Keystone token"):
        parse_token(body)


def test_member_is_not_admin() -> None:
    member = frozenset({"member"})
    assert to_principal(_token(), POLICY) == Principal("u1", "p1", False, member)


def test_admin_role_is_admin() -> None:
    assert to_principal(_token(frozenset({"admin", "member"})), POLICY).is_admin


def test_deprecated_admin_role_stands_in_for_context_is_admin() -> None:
    roles = frozenset({"cloud-admin"})
    assert to_principal(_token(roles), Policy(admin_role="cloud-admin")).is_admin
    assert not to_principal(_token(roles), POLICY).is_admin


def test_is_admin_project_is_the_policys_to_consult(tmp_path: Path) -> None:
    # Nova's defaults ignore it (as nova-api does); a policy file may require it.
    token = _token(frozenset({"admin"}), is_admin_project=False)
    caller = to_principal(token, POLICY)
    assert caller.is_admin
    assert not caller.is_admin_project
    strict = tmp_path / "policy.yaml"
    strict.write_text('"context_is_admin": "role:admin and is_admin_project:True"\n')
    assert not to_principal(token, Policy(strict)).is_admin
    assert to_principal(_token(frozenset({"admin"})), Policy(strict)).is_admin


def test_token_without_project_is_forbidden() -> None:
    with pytest.raises(Forbidden):
        to_principal(_token(frozenset({"admin"}), project_id=None), POLICY)


# --- the cache ----------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_cache_keeps_a_token_until_it_expires() -> None:
    clock = Clock(EXPIRES_TS - 100)
    cache = TokenCache(10, max_ttl_s=300, clock=clock)
    cache.put("k", _token())
    clock.now = EXPIRES_TS - 1
    assert cache.get("k") == _token()
    clock.now = EXPIRES_TS
    assert cache.get("k") is None
    assert len(cache) == 0


def test_cache_ttl_is_capped() -> None:
    clock = Clock(EXPIRES_TS - 3600)
    cache = TokenCache(10, max_ttl_s=300, clock=clock)
    cache.put("k", _token())
    clock.now += 299
    assert cache.get("k") is not None
    clock.now += 1
    assert cache.get("k") is None


def test_cache_skips_an_expired_token() -> None:
    cache = TokenCache(10, max_ttl_s=300, clock=Clock(EXPIRES_TS + 1))
    cache.put("k", _token())
    assert len(cache) == 0


def test_cache_keeps_refusals_briefly() -> None:
    clock = Clock(0.0)
    cache = TokenCache(10, max_ttl_s=300, clock=clock)
    cache.put("bad", InvalidToken())
    clock.now = INVALID_TTL_S - 0.1
    assert cache.get("bad") == InvalidToken()
    clock.now = INVALID_TTL_S
    assert cache.get("bad") is None


def test_cache_evicts_the_least_recently_used() -> None:
    cache = TokenCache(2, max_ttl_s=300, clock=Clock(0.0))
    cache.put("a", _token(user_id="a"))
    cache.put("b", _token(user_id="b"))
    assert cache.get("a") is not None  # "b" is now the least recently used
    cache.put("c", _token(user_id="c"))
    assert len(cache) == 2
    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert cache.get("c") is not None


# --- settings and the other modes ---------------------------------------------------------


def _settings(**fields: Any) -> Settings:
    values: dict[str, Any] = {
        "auth_mode": "keystone",
        "keystone_auth_url": "http://keystone.test/v3",
        "keystone_username": "nova",
        "keystone_password": "secret",
        **fields,
    }
    return Settings(**values)


def test_keystone_mode_needs_url_user_and_password() -> None:
    with pytest.raises(ValidationError, match="keystone_auth_url, keystone_password"):
        Settings(auth_mode="keystone", keystone_username="nova")


def test_challenge_names_keystone() -> None:
    settings = _settings()
    assert www_authenticate(settings, "http://gw") == 'Keystone uri="http://keystone.test/v3"'
    explicit = _settings(www_authenticate_uri="https://id.example/v3")
    assert www_authenticate(explicit, "http://gw") == 'Keystone uri="https://id.example/v3"'


def test_sync_authenticate_does_not_serve_keystone_mode() -> None:
    with pytest.raises(TypeError):
        authenticate({"x-auth-token": "t"}, _settings(), POLICY)


def test_admin_role_applies_to_trusted_headers() -> None:
    settings = Settings(auth_mode="trusted-headers", admin_role="cloud-admin")
    policy = Policy(admin_role=settings.admin_role)
    headers = {"x-project-id": "p", "x-user-id": "u", "x-roles": "admin"}
    assert not authenticate(headers, settings, policy).is_admin
    headers["x-roles"] = "member,cloud-admin"
    assert authenticate(headers, settings, policy).is_admin


# --- the validator, with a scripted session -----------------------------------------------


class Answer:
    def __init__(self, body: object) -> None:
        self.body = body

    def json(self) -> object:
        return self.body


class ScriptedSession:
    """Stands in for keystoneauth1's Session: answers ``get`` with what it is told."""

    def __init__(self, outcome: object) -> None:
        self.outcome = outcome
        self.calls = 0
        self.release = threading.Event()
        self.release.set()
        self.session = self  # keystoneauth1's requests.Session, closed by the validator

    def get(self, url: str, **kwargs: object) -> Answer:
        assert url.startswith("/auth/tokens")
        self.calls += 1
        self.release.wait(5.0)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return Answer(self.outcome)

    def close(self) -> None:
        self.release.set()


@pytest.fixture
def scripted() -> Iterator[tuple[ScriptedSession, KeystoneValidator]]:
    session = ScriptedSession(_body())
    validator = KeystoneValidator(
        _settings(keystone_timeout_s=0.5), POLICY, cast(ks_session.Session, session)
    )
    yield session, validator
    validator.close()


async def test_valid_token_is_cached(
    scripted: tuple[ScriptedSession, KeystoneValidator],
) -> None:
    session, validator = scripted
    assert await validator.principal("t") == Principal("u1", "p1", False, READER)
    session.outcome = ksa_exc.ConnectFailure("Keystone is down")
    assert await validator.principal("t") == Principal("u1", "p1", False, READER)
    assert session.calls == 1


async def test_concurrent_validations_share_one_call(
    scripted: tuple[ScriptedSession, KeystoneValidator],
) -> None:
    session, validator = scripted
    session.release.clear()
    waiting = [asyncio.create_task(validator.principal("t")) for _ in range(10)]
    await asyncio.sleep(0.05)
    session.release.set()
    assert {p.user_id for p in await asyncio.gather(*waiting)} == {"u1"}
    assert session.calls == 1


async def test_unknown_token_is_401_and_remembered(
    scripted: tuple[ScriptedSession, KeystoneValidator],
) -> None:
    session, validator = scripted
    session.outcome = ksa_exc.NotFound()
    for _ in range(2):
        with pytest.raises(Unauthorized):
            await validator.principal("bad")
    assert session.calls == 1


@pytest.mark.parametrize(
    "failure",
    [
        ksa_exc.ConnectFailure("refused"),
        ksa_exc.ConnectTimeout("no answer"),
        ksa_exc.InternalServerError(),
        ksa_exc.Unauthorized(),  # the service user's password is wrong
        ksa_exc.Forbidden(),  # the service user may not validate tokens
        ksa_exc.EndpointNotFound(),
        {"token": "garbage"},
    ],
)
async def test_keystone_failures_are_503_and_not_cached(
    scripted: tuple[ScriptedSession, KeystoneValidator], failure: object
) -> None:
    session, validator = scripted
    session.outcome = failure
    with pytest.raises(ServiceUnavailable) as raised:
        await validator.principal("t")
    assert raised.value.headers["Retry-After"] == "30"
    session.outcome = _body()
    assert (await validator.principal("t")).project_id == "p1"
    assert session.calls == 2


async def test_slow_keystone_is_503_after_the_timeout(
    scripted: tuple[ScriptedSession, KeystoneValidator],
) -> None:
    session, validator = scripted
    session.release.clear()
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ServiceUnavailable):
        await validator.principal("t")
    assert 0.5 <= loop.time() - started < 1.5
    session.release.set()


# --- the breaker in front of Keystone -----------------------------------------------------


@pytest.fixture
def breakered() -> Iterator[tuple[ScriptedSession, KeystoneValidator]]:
    session = ScriptedSession(_body())
    settings = _settings(keystone_timeout_s=0.3, breaker_failures=2, breaker_cooldown_s=0.5)
    validator = KeystoneValidator(settings, POLICY, cast(ks_session.Session, session))
    yield session, validator
    validator.close()


async def test_a_hung_keystone_opens_the_breaker_and_new_tokens_fail_fast(
    breakered: tuple[ScriptedSession, KeystoneValidator],
) -> None:
    session, validator = breakered
    assert await validator.principal("cached") == Principal("u1", "p1", False, READER)
    session.release.clear()  # Keystone hangs
    with pytest.raises(ServiceUnavailable):
        await validator.principal("new1")  # waits out the timeout, opens the breaker
    calls = session.calls
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ServiceUnavailable) as raised:
        await validator.principal("new2")
    assert loop.time() - started < 0.1
    assert raised.value.headers["Retry-After"] == "30"
    assert session.calls == calls  # Keystone was not asked
    # A cached token never reaches the breaker.
    assert await validator.principal("cached") == Principal("u1", "p1", False, READER)
    # After the cool-down one call tries Keystone again; its success closes the breaker.
    session.release.set()
    await asyncio.sleep(0.6)
    assert (await validator.principal("new2")).project_id == "p1"
    assert (await validator.principal("new3")).project_id == "p1"


async def test_failures_in_a_row_open_the_breaker(
    breakered: tuple[ScriptedSession, KeystoneValidator],
) -> None:
    session, validator = breakered
    session.outcome = ksa_exc.ConnectFailure("refused")
    for token in ("a", "b"):
        with pytest.raises(ServiceUnavailable):
            await validator.principal(token)
    assert session.calls == 2
    session.outcome = _body()
    with pytest.raises(ServiceUnavailable):
        await validator.principal("c")  # open: not asked, although Keystone is back
    assert session.calls == 2
    await asyncio.sleep(0.6)
    assert (await validator.principal("c")).project_id == "p1"


async def test_an_unknown_token_is_not_a_keystone_failure(
    breakered: tuple[ScriptedSession, KeystoneValidator],
) -> None:
    session, validator = breakered
    session.outcome = ksa_exc.NotFound()
    for token in ("x", "y", "z"):
        with pytest.raises(Unauthorized):
            await validator.principal(token)
    assert session.calls == 3  # every one asked: 404s do not open the breaker
