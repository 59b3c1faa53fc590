"""gateway.cli: noauth is refused on anything but loopback unless explicitly allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import _parser, check_bind, is_loopback, main
from gateway.settings import Settings
from gateway.workers import RunDir, SettingsSource, worker_env, worker_setup


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


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_fewer_than_one_worker_is_a_usage_error(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--workers", value])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --workers" in err
    assert "at least 1" in err


def test_one_worker_by_default_and_only_serve_has_workers() -> None:
    assert _parser().parse_args(["serve"]).workers == 1
    assert _parser().parse_args(["serve", "--workers", "4"]).workers == 4
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(["demo", "--workers", "2"])
    assert exited.value.code == 2


@pytest.mark.parametrize(
    "source",
    [
        SettingsSource("/etc/cellgate/cellgate.toml", "json"),
        SettingsSource(None, None),
        SettingsSource(None, None, ("/etc/nova/nova.conf", "/etc/nova/nova.conf.d/x.conf")),
    ],
)
def test_a_worker_gets_what_the_parent_loaded_from(source: SettingsSource) -> None:
    run_dir = RunDir(Path("/tmp/cellgate-serve-x"))
    assert worker_setup(worker_env(source, run_dir)) == (source, run_dir)


def test_log_format_wins_over_the_environment_in_workers_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CELLGATE_LOG_FORMAT", "text")
    assert SettingsSource(None, "json").load().log_format == "json"
    assert SettingsSource(None, None).load().log_format == "text"


def test_nova_config_reaches_the_settings(tmp_path: Path) -> None:
    conf = tmp_path / "nova.conf"
    conf.write_text("[api]\nmax_limit = 77\n")
    assert SettingsSource(None, None, (str(conf),)).load().max_limit == 77


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "nova.conf not found"),
        ("[api]\nmax_limit = many\n", "[api] max_limit"),
        ("[api]\nmax_limit = 0\n", "max_limit"),  # Nova allows 0, cellgate does not
    ],
)
@pytest.mark.parametrize("command", ["serve", "doctor", "cells"])
def test_an_unusable_nova_conf_is_a_usage_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
    text: str | None,
    message: str,
) -> None:
    conf = tmp_path / "nova.conf"
    if text is not None:
        conf.write_text(text)
    with pytest.raises(SystemExit) as exited:
        main([command, "--nova-config", str(conf)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_an_unusable_policy_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text('"os_compute_api:servers:index": [unclosed\n')
    conf = tmp_path / "nova.conf"
    conf.write_text("[oslo_policy]\npolicy_file = policy.yaml\n")
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--nova-config", str(conf)])
    assert exited.value.code == 2
    assert f"policy file {policy}" in capsys.readouterr().err
