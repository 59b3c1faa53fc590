"""``cellgate serve --workers N`` (N > 1): N uvicorn worker processes on one socket under
uvicorn's supervisor.

Each worker loads the same Settings as the parent (``--config``, ``--log-format`` and the
environment; the first two reach it through the internal variable :data:`WORKER_ENV`) and
counts its metrics in a private directory the parent creates and removes
(``PROMETHEUS_MULTIPROC_DIR``, see :mod:`gateway.metrics`). A worker that fails to start
stops them all: a schema mismatch is named once, with exit status 2.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import uvicorn
from prometheus_client.multiprocess import mark_process_dead
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from gateway.app import create_app
from gateway.logs import configure_logging
from gateway.server import (
    USAGE_ERROR,
    StartupFailure,
    schema_message,
    start_logging,
    uvicorn_config,
)
from gateway.settings import Settings, load_settings

__all__ = [
    "WORKER_ENV",
    "RunDir",
    "SettingsSource",
    "Supervisor",
    "WorkerStartup",
    "serve_workers",
    "worker_app",
    "worker_env",
    "worker_setup",
]

# Internal: how ``serve --workers N`` tells each worker process what to load (JSON).
WORKER_ENV = "_CELLGATE_SERVE_WORKER"


@dataclass(frozen=True)
class SettingsSource:
    """Where ``serve`` takes its Settings from besides the environment: ``--config``,
    ``--log-format`` and ``--nova-config``. Every worker process loads the same."""

    config: str | None
    log_format: str | None
    nova_config: tuple[str, ...] = ()

    def load(self) -> Settings:
        overrides = {} if self.log_format is None else {"log_format": self.log_format}
        config = Path(self.config) if self.config else None
        return load_settings(config, [Path(p) for p in self.nova_config], **overrides)


@dataclass(frozen=True)
class RunDir:
    """The private directory of one ``serve --workers N`` run: ``metrics/`` for
    prometheus_client, and what workers leave for the parent: ``ready-<pid>`` once started,
    ``schema-mismatch`` (the message) when the databases lack what cellgate reads."""

    path: Path

    @property
    def metrics(self) -> Path:
        return self.path / "metrics"

    def mark_ready(self) -> None:
        (self.path / f"ready-{os.getpid()}").touch()

    def ready(self, pids: Iterable[int]) -> bool:
        return all((self.path / f"ready-{pid}").exists() for pid in pids)

    def report_mismatch(self, message: str) -> None:
        # Written aside and renamed, so the parent never reads half of it.
        part = self.path / f"schema-mismatch-{os.getpid()}"
        part.write_text(message)
        part.replace(self.path / "schema-mismatch")

    def mismatch(self) -> str | None:
        try:
            return (self.path / "schema-mismatch").read_text()
        except FileNotFoundError:
            return None


def worker_env(source: SettingsSource, run_dir: RunDir) -> str:
    return json.dumps({**asdict(source), "run_dir": str(run_dir.path)})


def worker_setup(value: str) -> tuple[SettingsSource, RunDir]:
    fields = json.loads(value)
    source = SettingsSource(fields["config"], fields["log_format"], tuple(fields["nova_config"]))
    return source, RunDir(Path(fields["run_dir"]))


class WorkerStartup(StartupFailure):
    """:class:`StartupFailure` in a worker process, telling the parent through the run
    directory that its lifespan started, or the schema mismatch that stopped it."""

    def __init__(self, app: ASGIApp, run_dir: RunDir) -> None:
        super().__init__(app)
        self.run_dir = run_dir

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def report(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                self.run_dir.mark_ready()
            await send(message)

        try:
            await super().__call__(scope, receive, report)
        finally:
            if self.mismatch is not None:
                self.run_dir.report_mismatch(schema_message(self.mismatch))


def worker_app() -> ASGIApp:
    """The app factory uvicorn calls in each ``serve --workers N`` process."""
    source, run_dir = worker_setup(os.environ[WORKER_ENV])
    settings = source.load()
    configure_logging(settings.log_level, settings.log_format)
    return WorkerStartup(create_app(settings), run_dir)


class Supervisor(Multiprocess):
    """uvicorn's supervisor (restarts a worker that dies, stops all on SIGINT/SIGTERM),
    which also prints the banner once every worker has started, stops instead of
    restarting when a worker ends before that or finds a schema mismatch (:attr:`failed`:
    the next would fail the same way), and forgets a dead worker's live gauges."""

    def __init__(
        self, config: uvicorn.Config, sock: socket.socket, run_dir: RunDir, banner: str | None
    ) -> None:
        super().__init__(config, sockets=[sock])
        self.run_dir = run_dir
        self.banner = banner
        self.started = False
        self.failed = False
        self._pids: set[int] = set()

    def keep_subprocess_alive(self) -> None:
        if self.run_dir.mismatch() is not None or (
            not self.started and any(p.exitcode is not None for p in self.processes)
        ):
            self.failed = True
            self.should_exit.set()
            return
        super().keep_subprocess_alive()
        # Recent uvicorn stops by itself when a restarted worker fails to start (status 3).
        self.failed = any(p.exitcode == STARTUP_FAILURE for p in self.processes)
        pids = {p.pid for p in self.processes if p.pid is not None}
        for pid in self._pids - pids:
            mark_process_dead(pid, str(self.run_dir.metrics))  # type: ignore[no-untyped-call]  # prometheus_client.multiprocess is unannotated
        self._pids = pids
        if not self.started and self.run_dir.ready(pids):
            self.started = True
            if self.banner:
                print(self.banner, flush=True)


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def serve_workers(
    settings: Settings,
    source: SettingsSource,
    workers: int,
    host: str,
    port: int,
    banner: str | None,
) -> None:
    start_logging(settings, host)
    config = source.config and str(Path(source.config).resolve())
    with tempfile.TemporaryDirectory(prefix="cellgate-serve-") as tmp:
        run_dir = RunDir(Path(tmp))
        run_dir.metrics.mkdir()
        env = {
            # Read by prometheus_client when a worker imports it, so set before they start.
            "PROMETHEUS_MULTIPROC_DIR": str(run_dir.metrics),
            WORKER_ENV: worker_env(
                SettingsSource(
                    config,
                    source.log_format,
                    tuple(str(Path(p).resolve()) for p in source.nova_config),
                ),
                run_dir,
            ),
        }
        with _environ(env):
            uv_config = uvicorn_config(
                # By name: each worker process imports it.
                "gateway.workers:worker_app",
                settings,
                host,
                port,
                workers=workers,
                factory=True,
            )
            with uv_config.bind_socket() as sock:
                supervisor = Supervisor(uv_config, sock, run_dir, banner)
                supervisor.run()
        mismatch = run_dir.mismatch()
    if mismatch is not None:
        print(mismatch, file=sys.stderr)
        sys.exit(USAGE_ERROR)
    if supervisor.failed:
        sys.exit(STARTUP_FAILURE)
    if not supervisor.started:  # stopped by a signal while starting
        sys.exit(1)
