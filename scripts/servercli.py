"""The command line and the server behaviour ``scripts/pgserver.py`` and
``scripts/mariadbserver.py`` share (stdlib only).

- :class:`PrivateServer`: a mixin for a server dataclass with ``datadir`` and ``port`` that
  says its live :attr:`~PrivateServer.pid` and :attr:`~PrivateServer.running_port`: the
  freeze record beside the data directory, freeze, thaw, restore, the start checks and the
  ``STATE PORT PID FROZEN_PIDS`` status line.
- :class:`ServerCli`: the ``bindir``, ``template`` and ``start|stop|status|freeze|thaw``
  commands over a backend's binaries finder, :class:`Template`-like and server classes.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from serverproc import FreezeRecord, ServerError

__all__ = ["PrivateServer", "ServerCli", "status_line"]


class PrivateServer:
    """What every private server does the same way, whatever the database. The dataclass
    using it gives ``datadir``, ``port``, :attr:`pid` and :attr:`running_port`."""

    datadir: Path
    port: int
    error: ClassVar[type[ServerError]] = ServerError

    @property
    def pid(self) -> int | None:
        """The live server's main pid (also while frozen), else None."""
        raise NotImplementedError

    @property
    def running_port(self) -> int | None:
        """The port the live server listens on (maybe not :attr:`port`), else None."""
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def frozen_file(self) -> Path:
        return self.datadir.with_name(self.datadir.name + ".frozen")

    @property
    def frozen_pids(self) -> list[int]:
        return FreezeRecord(self.frozen_file).pids

    @property
    def frozen(self) -> bool:
        return FreezeRecord(self.frozen_file).frozen

    def needs_start(self) -> bool:
        """Whether :meth:`start` has anything to do: False when the server already runs on
        :attr:`port`; ``error`` when it runs on another one or the port is out of range.
        Pids recorded by a freeze that outlived its server are thawed."""
        if (running_port := self.running_port) is not None:
            if running_port != self.port:
                raise self.error(f"{self.datadir} already runs on port {running_port}")
            return False
        if not 0 < self.port < 65536:
            raise self.error(f"port {self.port} out of range")
        self.thaw()
        return True

    def start(self) -> bool:
        raise NotImplementedError

    def stop(self, mode: Any = "fast") -> bool:
        raise NotImplementedError

    def freeze(self) -> list[int]:
        """SIGSTOP the main process (so that it forks no more), then every descendant; the
        stopped pids (already frozen: the recorded ones)."""
        if self.frozen:
            return self.frozen_pids
        pid = self.pid
        if pid is None:
            raise self.error(f"{self.datadir} is not running")
        return FreezeRecord(self.frozen_file).freeze(pid)

    def thaw(self) -> bool:
        """SIGCONT every process :meth:`freeze` stopped; False when none was frozen."""
        return FreezeRecord(self.frozen_file).thaw()

    def restore(self) -> None:
        """Back to normal whatever happened: thawed and running."""
        self.thaw()
        self.start()


def status_line(server: PrivateServer) -> str:
    """``STATE PORT PID FROZEN_PIDS`` (``-`` where nothing applies)."""
    pid, port = server.pid, server.running_port
    if pid is None or port is None:
        return "stopped - - -"
    frozen = ",".join(str(p) for p in server.frozen_pids)
    return f"{'frozen' if frozen else 'running'} {port} {pid} {frozen or '-'}"


class _Template(Protocol):
    def ensure(self) -> bool: ...
    def copy_to(self, datadir: Path) -> bool: ...


B = TypeVar("B")
S = TypeVar("S", bound=PrivateServer)


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def _nothing_after_start(server: Any, args: argparse.Namespace) -> None:
    pass


@dataclass(frozen=True)
class ServerCli(Generic[B, S]):
    """One backend's command line (exit status 0: done; 3: nothing to do, or stopped;
    1: error; 2: usage)."""

    prog: str
    doc: str
    bin_env: str  # the environment variable :attr:`find` reads the binaries' place from
    find: Callable[[Mapping[str, str] | None], B]
    bindir_of: Callable[[B], Path]
    template: Callable[[Path, dict[str, str], B], _Template]
    server: Callable[[Path, int, Path, Path, dict[str, str], B], S]
    setting_name: re.Pattern[str]
    stop_modes: Sequence[str]
    helps: Mapping[str, str]  # binaries, bindir, template, setting
    server_arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments
    after_start: Callable[[S, argparse.Namespace], None] = field(default=_nothing_after_start)

    def _setting(self, text: str) -> tuple[str, str]:
        name, sep, value = text.partition("=")
        if not sep or not self.setting_name.match(name):
            raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
        return name, value

    def parser(self) -> argparse.ArgumentParser:
        binaries = argparse.ArgumentParser(add_help=False)
        binaries.add_argument("--bindir", type=Path, help=self.helps["binaries"])
        settings = argparse.ArgumentParser(add_help=False)
        settings.add_argument("-c", dest="settings", type=self._setting, action="append",
                              default=[], metavar="NAME=VALUE",
                              help=self.helps["setting"])  # fmt: skip
        parser = argparse.ArgumentParser(prog=self.prog, description=self.doc.split("\n")[0])
        commands = parser.add_subparsers(dest="command", required=True)
        commands.add_parser("bindir", parents=[binaries], help=self.helps["bindir"])
        template = commands.add_parser(
            "template", parents=[binaries, settings], help=self.helps["template"]
        )
        template.add_argument("template", type=Path)
        template.add_argument("datadirs", type=Path, nargs="*", help="copies to make if missing")
        for name in ("start", "stop", "status", "freeze", "thaw"):
            server = commands.add_parser(name, parents=[binaries, settings])
            server.add_argument("datadir", type=Path)
            server.add_argument("--port", type=int, default=0, help="required by start")
            server.add_argument("--sockdir", type=Path, help="default: beside the data directory")
            server.add_argument("--log", type=Path, help="default: DATADIR.log")
            server.add_argument("--mode", choices=list(self.stop_modes), default="fast")
            self.server_arguments(server)
        return parser

    def _run(self, parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
        binaries = self.find({self.bin_env: str(args.bindir)} if args.bindir else None)
        if args.command == "bindir":
            print(self.bindir_of(binaries))
            return 0
        settings = dict(args.settings)
        if args.command == "template":
            template = self.template(args.template, settings, binaries)
            template.ensure()
            for copy in args.datadirs:
                if template.copy_to(copy):
                    print(copy)
            return 0
        datadir: Path = args.datadir
        if args.command == "start" and not args.port:
            parser.error("start needs --port")
        server = self.server(
            datadir,
            args.port,
            args.sockdir or datadir.parent,
            args.log or datadir.with_name(datadir.name + ".log"),
            settings,
            binaries,
        )
        match args.command:
            case "start":
                done = server.start()
                self.after_start(server, args)
            case "stop":
                done = server.stop(args.mode)
            case "freeze":
                done = not server.frozen
                server.freeze()
            case "thaw":
                done = server.thaw()
            case _:
                done = server.running
        if args.command in ("start", "status", "freeze"):
            print(status_line(server))
        return 0 if done else 3

    def main(self, argv: list[str] | None = None) -> int:
        parser = self.parser()
        args = parser.parse_args(argv)
        try:
            return self._run(parser, args)
        except (ServerError, OSError, ValueError) as exc:
            print(f"{self.prog.removesuffix('.py')}: {exc}", file=sys.stderr)
            return 1
