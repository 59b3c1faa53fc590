"""gateway.cli: noauth is refused on anything but loopback unless explicitly allowed."""

from __future__ import annotations

import pytest

from gateway.cli import check_bind, is_loopback
from gateway.settings import Settings


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "[::1]", "localhost", "LOCALHOST"]
)
def test_loopback(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "10.0.0.5", "192.168.1.1", "128.0.0.1", "example.com", "", "gw"]
)
def test_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_noauth_on_a_public_address_is_refused_with_the_way_out() -> None:
    refusal = check_bind(Settings(auth_mode="noauth"), "0.0.0.0")
    assert refusal is not None
    assert "0.0.0.0" in refusal
    assert "CELLGATE_ALLOW_INSECURE_NOAUTH" in refusal


@pytest.mark.parametrize(
    ("settings", "host"),
    [
        (Settings(auth_mode="noauth"), "127.0.0.1"),
        (Settings(auth_mode="noauth", allow_insecure_noauth=True), "0.0.0.0"),
        (Settings(auth_mode="jwt"), "0.0.0.0"),
        (Settings(auth_mode="trusted-headers"), "::"),
    ],
)
def test_allowed_binds(settings: Settings, host: str) -> None:
    assert check_bind(settings, host) is None


def test_the_opt_in_reads_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELLGATE_ALLOW_INSECURE_NOAUTH", "true")
    assert Settings().allow_insecure_noauth
    monkeypatch.delenv("CELLGATE_ALLOW_INSECURE_NOAUTH")
    assert not Settings().allow_insecure_noauth
