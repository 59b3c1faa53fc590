"""The three auth modes; what a caller may do is Nova's policy's (its defaults here)."""

from __future__ import annotations

import time

import jwt
import pytest

from gateway.auth import NOAUTH_ROLES, Principal, authenticate, www_authenticate
from gateway.errors import Unauthorized
from gateway.policy import Policy
from gateway.settings import Settings

POLICY = Policy()

SECRET = "s3cret-for-tests-only-0123456789abcdef"


def test_noauth_user_and_project() -> None:
    assert authenticate({"x-auth-token": "alice:demo"}, Settings(), POLICY) == Principal(
        "alice", "demo", False, NOAUTH_ROLES
    )


def test_noauth_admin_project_is_admin() -> None:
    caller = authenticate({"x-auth-token": "root:admin"}, Settings(), POLICY)
    assert caller.is_admin
    assert caller.roles == {"admin", "member", "reader"}


def test_noauth_bare_name_is_user_and_project() -> None:
    assert authenticate({"x-auth-token": "demo"}, Settings(), POLICY) == Principal(
        "demo", "demo", False, NOAUTH_ROLES
    )


@pytest.mark.parametrize("headers", [{}, {"x-auth-token": ""}, {"x-auth-token": ":"}])
def test_noauth_missing_token_is_unauthorized(headers: dict[str, str]) -> None:
    with pytest.raises(Unauthorized):
        authenticate(headers, Settings(), POLICY)


def _jwt_settings() -> Settings:
    return Settings(auth_mode="jwt", jwt_secret=SECRET)  # type: ignore[arg-type]  # pydantic turns the str into the SecretStr field


def _token(claims: dict[str, object], key: str = SECRET) -> str:
    return jwt.encode({"exp": int(time.time()) + 60, **claims}, key, algorithm="HS256")


def test_jwt_valid_token() -> None:
    token = _token({"sub": "bob", "project_id": "p1", "roles": ["member"]})
    assert authenticate({"x-auth-token": token}, _jwt_settings(), POLICY) == Principal(
        "bob", "p1", False, frozenset({"member"})
    )


def test_jwt_admin_role() -> None:
    token = _token({"sub": "ops", "project_id": "p1", "roles": ["admin"]})
    assert authenticate({"x-auth-token": token}, _jwt_settings(), POLICY).is_admin


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        _token({"sub": "bob", "project_id": "p1"}, key="another-key-that-is-long-enough-000"),
        jwt.encode({"sub": "bob", "project_id": "p1"}, SECRET, algorithm="HS256"),  # no exp
        _token({"sub": "bob"}),  # no project
    ],
)
def test_jwt_rejects_bad_tokens(token: str) -> None:
    with pytest.raises(Unauthorized):
        authenticate({"x-auth-token": token}, _jwt_settings(), POLICY)


def test_trusted_headers() -> None:
    settings = Settings(auth_mode="trusted-headers")
    headers = {"x-project-id": "p9", "x-user-id": "u1", "x-roles": "reader, admin"}
    assert authenticate(headers, settings, POLICY) == Principal(
        "u1", "p9", True, frozenset({"reader", "admin"})
    )
    with pytest.raises(Unauthorized):
        authenticate({"x-auth-token": "demo:demo"}, settings, POLICY)


def _jwt_checked(**fields: str) -> Settings:
    return Settings(auth_mode="jwt", jwt_secret=SECRET, **fields)  # type: ignore[arg-type]  # pydantic validates **fields by name; mypy cannot type them


CLAIMS = {"sub": "bob", "project_id": "p1", "roles": []}


def test_jwt_audience_and_issuer_match() -> None:
    settings = _jwt_checked(jwt_audience="cellgate", jwt_issuer="https://idp.example")
    token = _token({**CLAIMS, "aud": "cellgate", "iss": "https://idp.example"})
    assert authenticate({"x-auth-token": token}, settings, POLICY) == Principal("bob", "p1", False)
    listed = _token({**CLAIMS, "aud": ["other", "cellgate"], "iss": "https://idp.example"})
    assert authenticate({"x-auth-token": listed}, settings, POLICY).project_id == "p1"


@pytest.mark.parametrize(
    ("fields", "claims"),
    [
        ({"jwt_audience": "cellgate"}, {}),  # aud required once configured
        ({"jwt_audience": "cellgate"}, {"aud": "other"}),
        ({"jwt_issuer": "https://idp.example"}, {}),
        ({"jwt_issuer": "https://idp.example"}, {"iss": "https://evil.example"}),
        ({"jwt_audience": "cellgate", "jwt_issuer": "https://idp.example"}, {"aud": "cellgate"}),
    ],
)
def test_jwt_audience_and_issuer_are_enforced(
    fields: dict[str, str], claims: dict[str, object]
) -> None:
    token = _token({**CLAIMS, **claims})
    with pytest.raises(Unauthorized):
        authenticate({"x-auth-token": token}, _jwt_checked(**fields), POLICY)


def test_jwt_without_configured_audience_accepts_tokens_without_one() -> None:
    token = _token({**CLAIMS, "iss": "anyone"})
    assert authenticate({"x-auth-token": token}, _jwt_settings(), POLICY).user_id == "bob"


def test_www_authenticate_is_derived_from_the_base_url() -> None:
    challenge = www_authenticate(Settings(), "http://gw.example:8774/")
    assert challenge == 'Keystone uri="http://gw.example:8774/identity/v3"'


def test_www_authenticate_uri_setting_wins() -> None:
    settings = Settings(www_authenticate_uri="https://keystone.example/identity")
    challenge = www_authenticate(settings, "http://gw.example:8774")
    assert challenge == 'Keystone uri="https://keystone.example/identity"'
