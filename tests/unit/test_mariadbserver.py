"""scripts/mariadbserver.py's pure parts: finding the binaries (on a fake tree), the server's
command line and options, the greeting parser, the command line's checks; and the process
helpers it shares with pgserver.py (scripts/serverproc.py)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from mariadbserver import (
    DEFAULTS,
    Binaries,
    MariaDBError,
    MariaDBServer,
    find_binaries,
    main,
    option_words,
)
from mariadbwire import GreetingError, parse_greeting
from serverproc import FreezeRecord, alive, user_argv

BINARIES = Binaries(
    Path("/usr/sbin/mariadbd"), Path("/usr/bin/mariadb-install-db"), Path("/usr/bin/mariadb")
)
NOWHERE: list[Path] = []


def _bindir(root: Path, *names: str) -> Path:
    """A fake bin directory holding executable ``names``."""
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / name).write_text("#!/bin/sh\n")
        (root / name).chmod(0o755)
    return root


def _server(**options: str) -> MariaDBServer:
    return MariaDBServer(
        Path("/tmp/dev stack/mariadb/cell1"),
        26401,
        Path("/tmp/dev stack/run"),
        Path("/tmp/dev stack/log/cell1.log"),
        options,
        BINARIES,
    )


def test_cellgate_mariadb_bin_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(_bindir(tmp_path / "path", "mariadbd", "mariadb")))
    mine = _bindir(tmp_path / "mine", "mariadbd", "mariadb-install-db")
    found = find_binaries({"CELLGATE_MARIADB_BIN": str(mine)}, search=NOWHERE)
    assert found == Binaries(
        mine / "mariadbd", mine / "mariadb-install-db", tmp_path / "path" / "mariadb"
    )


def test_cellgate_mariadb_bin_without_the_server_is_an_error(tmp_path: Path) -> None:
    env = {"CELLGATE_MARIADB_BIN": str(_bindir(tmp_path / "mine", "mariadb"))}
    with pytest.raises(MariaDBError, match="CELLGATE_MARIADB_BIN"):
        find_binaries(env, search=NOWHERE)


def test_search_dirs_after_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    sbin = _bindir(tmp_path / "sbin", "mariadbd")
    bin_ = _bindir(tmp_path / "bin", "mariadb-install-db", "mysql")  # the client's old name
    found = find_binaries({}, search=[sbin, bin_])
    assert found == Binaries(sbin / "mariadbd", bin_ / "mariadb-install-db", bin_ / "mysql")


def test_missing_binaries_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(MariaDBError, match="mariadbd, mariadb-install-db, mariadb;"):
        find_binaries({}, search=NOWHERE)


def test_server_command_line() -> None:
    argv = _server().argv(euid=1000)
    assert argv[:2] == ["/usr/sbin/mariadbd", "--no-defaults"]  # --no-defaults must be first
    assert argv[2:10] == [
        "--datadir=/tmp/dev stack/mariadb/cell1",
        "--port=26401",
        "--bind-address=127.0.0.1",
        "--socket=/tmp/dev stack/run/cell1.sock",
        "--pid-file=/tmp/dev stack/mariadb/cell1.pid",
        "--log-error=/tmp/dev stack/log/cell1.log",
        "--skip-name-resolve",
        "--character_set_server=utf8mb3",
    ]
    assert "--collation_server=utf8mb3_general_ci" in argv
    assert "--innodb_buffer_pool_size=64M" in argv
    assert not any(word.startswith("--user") for word in argv)


def test_as_root_the_server_drops_to_mysql_itself() -> None:
    argv = _server().argv(euid=0)
    assert argv[:3] == ["/usr/sbin/mariadbd", "--no-defaults", "--user=mysql"]


def test_options_override_the_defaults() -> None:
    argv = _server(innodb_buffer_pool_size="1G", performance_schema="ON").argv(euid=1000)
    assert "--innodb_buffer_pool_size=1G" in argv
    assert "--innodb_buffer_pool_size=64M" not in argv
    assert argv[-1] == "--performance_schema=ON"


def test_kolla_defaults() -> None:
    assert DEFAULTS["character_set_server"] == "utf8mb3"
    assert DEFAULTS["collation_server"] == "utf8mb3_general_ci"


def test_option_words() -> None:
    assert option_words({"skip-log-bin": "", "max_connections": "9"}) == [
        "--skip-log-bin",
        "--max_connections=9",
    ]


@pytest.mark.parametrize("name", ["", "1abc", "a=b", "a b", "x;y", "--x"])
def test_option_names_are_checked(name: str) -> None:
    with pytest.raises(ValueError, match="option name"):
        option_words({name: "1"})


def test_paths_are_absolute_and_derived(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/tmp")
    server = MariaDBServer(Path("d/cell2"), 1, Path("run"), Path("cell2.log"), {}, BINARIES)
    assert server.datadir == Path("/tmp/d/cell2")
    assert server.pid_file == Path("/tmp/d/cell2.pid")
    assert server.frozen_file == Path("/tmp/d/cell2.frozen")
    assert server.socket == Path("/tmp/run/cell2.sock")
    assert server.database_url("nova_cell2") == "mysql+pymysql://root@127.0.0.1:1/nova_cell2"


@pytest.mark.parametrize("name", ["nova cell", "a`b", "x;DROP", ""])
def test_database_names_are_checked(name: str) -> None:
    with pytest.raises(MariaDBError, match="not a database name"):
        _server().create_databases([name])


def _packet(payload: bytes, seq: int = 0) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload


def test_parse_greeting() -> None:
    payload = b"\x0a10.11.19-MariaDB-0+deb12u1\x00" + b"\x01\x00\x00\x00abcdefgh\x00"
    assert parse_greeting(_packet(payload)) == "10.11.19-MariaDB-0+deb12u1"


def test_parse_an_error_greeting() -> None:
    payload = b"\xff" + struct.pack("<H", 1040) + b"#08004Too many connections"
    with pytest.raises(GreetingError, match="error 1040: Too many connections"):
        parse_greeting(_packet(payload))
    old = b"\xff" + struct.pack("<H", 1129) + b"Host is blocked"
    with pytest.raises(GreetingError, match="error 1129: Host is blocked"):
        parse_greeting(_packet(old))


@pytest.mark.parametrize("data", [b"", b"\x01\x00\x00", _packet(b"\x09old\x00"), _packet(b"\x0a")])
def test_parse_junk(data: bytes) -> None:
    with pytest.raises(GreetingError):
        parse_greeting(data)


def test_user_argv_only_when_root() -> None:
    assert user_argv("mysql", [Path("/usr/bin/cp"), "-a"], euid=0) == [
        "runuser", "-u", "mysql", "--", "/usr/bin/cp", "-a",
    ]  # fmt: skip
    assert user_argv("mysql", [Path("/usr/bin/cp"), "-a"], euid=1000) == ["/usr/bin/cp", "-a"]


def test_freeze_record_file(tmp_path: Path) -> None:
    record = FreezeRecord(tmp_path / "cell1.frozen")
    assert not record.frozen
    assert record.pids == []
    assert not record.thaw()
    (tmp_path / "cell1.frozen").write_text("2147483646\n2147483645\n")  # no such processes
    assert record.frozen
    assert record.pids == [2147483646, 2147483645]
    assert record.thaw()
    assert not record.frozen


def test_start_needs_a_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = _bindir(tmp_path, "mariadbd", "mariadb-install-db", "mariadb")
    with pytest.raises(SystemExit) as exited:
        main(["start", str(tmp_path / "cell1"), "--bindir", str(fake)])
    assert exited.value.code == 2
    assert "start needs --port" in capsys.readouterr().err


def test_missing_binaries_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", str(tmp_path / "cell1"), "--bindir", str(tmp_path)]) == 1
    assert "mariadbserver: no mariadbd in" in capsys.readouterr().err


def test_bad_setting_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["status", "/tmp/nowhere", "-c", "no-value"])
    assert exited.value.code == 2
    assert "expected NAME=VALUE" in capsys.readouterr().err


def test_alive_reads_proc() -> None:
    import os

    assert alive(os.getpid())  # this process: running, several threads or one
    assert not alive(2**22 + 1)  # above the kernel's pid_max: never a process
