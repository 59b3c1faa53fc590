"""scripts/pgserver.py's pure parts: finding the binaries (on a fake tree), the commands and
options it builds, the files it reads and writes."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from pgserver import (
    PgError,
    conf_block,
    find_bindir,
    parse_postmaster_pid,
    postgres_argv,
    server_options,
)

NO_PG_CONFIG = "/nonexistent/pg_config"


def _bindir(root: Path, *names: str) -> Path:
    """A fake bin directory holding executable ``names``."""
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / name).write_text("#!/bin/sh\n")
        (root / name).chmod(0o755)
    return root


def test_cellgate_pg_bin_wins(tmp_path: Path) -> None:
    chosen = _bindir(tmp_path / "mine", "initdb", "pg_ctl")
    _bindir(tmp_path / "lib" / "16" / "bin", "initdb", "pg_ctl")
    env = {"CELLGATE_PG_BIN": str(chosen)}
    assert find_bindir(env, pg_config=NO_PG_CONFIG, lib_root=tmp_path / "lib") == chosen


def test_cellgate_pg_bin_without_binaries_is_an_error(tmp_path: Path) -> None:
    env = {"CELLGATE_PG_BIN": str(_bindir(tmp_path / "mine", "initdb"))}
    with pytest.raises(PgError, match="CELLGATE_PG_BIN"):
        find_bindir(env, pg_config=NO_PG_CONFIG, lib_root=tmp_path / "lib")


def test_pg_config_before_the_library_tree(tmp_path: Path) -> None:
    reported = _bindir(tmp_path / "pg" / "bin", "initdb", "pg_ctl")
    _bindir(tmp_path / "lib" / "16" / "bin", "initdb", "pg_ctl")
    pg_config = tmp_path / "pg_config"
    pg_config.write_text(f"#!/bin/sh\necho {reported}\n")
    pg_config.chmod(0o755)
    assert find_bindir({}, pg_config=str(pg_config), lib_root=tmp_path / "lib") == reported


def test_pg_config_without_server_binaries_falls_back(tmp_path: Path) -> None:
    client_only = _bindir(tmp_path / "client" / "bin", "psql")
    lib = _bindir(tmp_path / "lib" / "15" / "bin", "initdb", "pg_ctl")
    pg_config = tmp_path / "pg_config"
    pg_config.write_text(f"#!/bin/sh\necho {client_only}\n")
    pg_config.chmod(0o755)
    assert find_bindir({}, pg_config=str(pg_config), lib_root=tmp_path / "lib") == lib


def test_newest_complete_version_in_the_library_tree(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    _bindir(lib / "9.6" / "bin", "initdb", "pg_ctl")
    ten = _bindir(lib / "10" / "bin", "initdb", "pg_ctl")
    _bindir(lib / "17" / "bin", "initdb")  # no pg_ctl: skipped
    _bindir(lib / "devel" / "bin", "initdb", "pg_ctl")  # not a version: last
    assert find_bindir({}, pg_config=NO_PG_CONFIG, lib_root=lib) == ten


def test_no_binaries_anywhere(tmp_path: Path) -> None:
    with pytest.raises(PgError, match="set CELLGATE_PG_BIN"):
        find_bindir({}, pg_config=NO_PG_CONFIG, lib_root=tmp_path / "lib")


def test_as_postgres_only_when_root() -> None:
    argv = [Path("/usr/lib/postgresql/15/bin/pg_ctl"), "status"]
    assert postgres_argv(argv, euid=0) == [
        "runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/pg_ctl", "status",
    ]  # fmt: skip
    assert postgres_argv(argv, euid=1000) == ["/usr/lib/postgresql/15/bin/pg_ctl", "status"]


def test_server_options_loopback_then_settings() -> None:
    options = server_options(
        26401,
        Path("/tmp/dev stack/run"),
        {"shared_preload_libraries": "pg_stat_statements", "shared_buffers": "128MB"},
    )
    # pg_ctl hands the string to sh: it must split back into the same words.
    assert shlex.split(options) == [
        "-p", "26401", "-k", "/tmp/dev stack/run", "-c", "listen_addresses=127.0.0.1",
        "-c", "shared_preload_libraries=pg_stat_statements", "-c", "shared_buffers=128MB",
    ]  # fmt: skip


def test_server_options_quote_values() -> None:
    options = server_options(5, Path("/s"), {"application_name": "it's; rm -rf /"})
    assert shlex.split(options)[-1] == "application_name=it's; rm -rf /"


@pytest.mark.parametrize("name", ["", "1abc", "a=b", "a b", "x;y"])
def test_setting_names_are_checked(name: str) -> None:
    with pytest.raises(ValueError, match="setting name"):
        server_options(5, Path("/s"), {name: "1"})
    with pytest.raises(ValueError, match="setting name"):
        conf_block({name: "1"})


def test_conf_block_quotes_every_value() -> None:
    block = conf_block({"fsync": "off", "search_path": "'$user', public", "x.y": "a\\b"})
    assert block.splitlines()[2:] == [
        "fsync = 'off'",
        "search_path = '''$user'', public'",
        "x.y = 'a\\\\b'",
    ]
    assert block.endswith("\n")


def test_parse_postmaster_pid() -> None:
    text = "4242\n/var/lib/pg/data\n1700000000\n26401\n/run/pg\n127.0.0.1\n  1 2\nready   \n"
    assert parse_postmaster_pid(text) == (4242, 26401)
    assert parse_postmaster_pid("4242\n/var/lib/pg/data\n") is None  # still being written
    assert parse_postmaster_pid("") is None
