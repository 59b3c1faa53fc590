"""``scripts/devstack``'s processes beside the databases: a delay proxy in front of every
cell (``scripts/delayproxy.py``), a private Redis, the seeder, the gateway and (optional)
Prometheus, each with its pid file and log under the base directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from stackconf import REPO, Backend, Layout, StackError, say
from stackprocs import check_free, live_pid, pid_alive, spawn, stop_pid, wait_port

__all__ = ["Services"]

_PROMETHEUS_YML = """\
# written by scripts/devstack up (docker-compose's is scripts/monitoring/prometheus.yml)
global:
  scrape_interval: 5s
  evaluation_interval: 5s
scrape_configs:
  - job_name: cellgate
    metrics_path: /metrics
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


def _read(path: Path, default: str) -> str:
    try:
        return path.read_text().rstrip("\n")
    except OSError:
        return default


def _tail(path: Path, lines: int = 30) -> None:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return
    sys.stderr.write("".join(text.splitlines(keepends=True)[-lines:]))
    sys.stderr.flush()


@dataclass(frozen=True)
class Services:
    """The stack's proxies, Redis, gateway and Prometheus."""

    layout: Layout

    def _pid_file(self, name: str) -> Path:
        return self.layout.pid_dir / f"{name}.pid"

    def _log(self, name: str) -> Path:
        return self.layout.log_dir / f"{name}.log"

    def _python_env(self) -> dict[str, str]:
        """The environment with this checkout first on ``PYTHONPATH``."""
        path = os.environ.get("PYTHONPATH")
        return {**os.environ, "PYTHONPATH": f"{REPO}:{path}" if path else str(REPO)}

    def _stop(self, name: str, pattern: str) -> None:
        pid_file = self._pid_file(name)
        if (pid := live_pid(pid_file, pattern)) is not None:
            stop_pid(pid, name)
            say(f"{name} stopped")
        pid_file.unlink(missing_ok=True)

    # -- delay proxies ------------------------------------------------------------------

    def proxy_start(self, n: int) -> None:
        layout, name = self.layout, f"proxy-cell{n}"
        lport, tport = layout.proxy_port(n), layout.cell_port(n)
        delay_file = layout.delay_dir / f"cell{n}"
        if not delay_file.exists():
            delay_file.write_text("0\n")
        if (pid := live_pid(self._pid_file(name), "delayproxy.py")) is not None:
            # A running proxy keeps its delay: `up` does not undo a `scripts/outage ... slow`.
            delay = _read(delay_file, "")
            say(f"{name} already running (port {lport}, pid {pid}, delay {delay} s)")
            return
        delay_file.write_text("0\n")  # a new proxy starts without delay
        check_free(lport, f"proxy for cell{n}", layout.port_base)
        pid = spawn(
            [
                layout.python,
                str(REPO / "scripts" / "delayproxy.py"),
                "--listen",
                f"127.0.0.1:{lport}",
                "--target",
                f"127.0.0.1:{tport}",
                "--delay-file",
                str(delay_file),
            ],
            self._log(name),
            self._pid_file(name),
        )
        if not wait_port(lport, 10):
            raise StackError(f"{name} did not listen on {lport} (log: {self._log(name)})")
        say(f"{name} started (port {lport} -> {tport}, pid {pid})")

    def proxy_stop(self, n: int) -> None:
        self._stop(f"proxy-cell{n}", "delayproxy.py")

    def proxy_line(self, n: int) -> tuple[int | None, str]:
        """The proxy's pid (None when stopped) and its delay file's text."""
        delay = _read(self.layout.delay_dir / f"cell{n}", "0") or "0"
        return live_pid(self._pid_file(f"proxy-cell{n}"), "delayproxy.py"), delay

    # -- Redis --------------------------------------------------------------------------

    def redis_pid(self) -> int | None:
        return live_pid(self._pid_file("redis"), "redis-server")

    def redis_start(self) -> None:
        layout, pid_file = self.layout, self._pid_file("redis")
        if (pid := self.redis_pid()) is not None:
            say(f"redis already running (port {layout.redis_port}, pid {pid})")
            return
        if shutil.which("redis-server") is None:
            raise StackError("redis-server is not installed")
        check_free(layout.redis_port, "redis", layout.port_base)
        done = subprocess.run(
            [
                "redis-server",
                "--port",
                str(layout.redis_port),
                "--bind",
                "127.0.0.1",
                "--daemonize",
                "yes",
                "--pidfile",
                str(pid_file),
                "--logfile",
                str(self._log("redis")),
                "--dir",
                str(layout.redis_dir),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(done.returncode)
        if not wait_port(layout.redis_port, 10):
            raise StackError(f"redis did not start (log: {self._log('redis')})")
        for _ in range(50):
            if pid_file.exists() and pid_file.stat().st_size > 0:
                break
            time.sleep(0.1)
        pid_text = _read(pid_file, "?")
        say(f"redis started (port {layout.redis_port}, pid {pid_text})")

    def redis_stop(self) -> None:
        self._stop("redis", "redis-server")

    # -- the seeder and the gateway -----------------------------------------------------

    def seed(self, backend: Backend, cells: int, instances: int) -> None:
        layout, log = self.layout, self._log("seed")
        args = []
        for i in range(1, cells + 1):
            args += ["--cell", f"cell{i}={backend.cell_url(layout, i)}"]
        say(f"seeding {instances} instances into {cells} cells ...")
        with open(log, "ab") as out:
            done = subprocess.run(
                [
                    layout.python,
                    "-m",
                    "gateway.cli",
                    "seed",
                    "--api-database-url",
                    backend.api_url(layout),
                    *args,
                    "--instances",
                    str(instances),
                    "--quiet",
                ],
                cwd=REPO,
                env=self._python_env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if done.returncode != 0:
            _tail(log)
            raise StackError(f"seeding failed (log: {log})")
        seeded = [line for line in _read(log, "").splitlines() if line.startswith("seeded ")]
        say(seeded[-1] if seeded else "")
        layout.seed_stamp.write_text(f"cells={cells} instances={instances}\n")

    def gateway_pid(self) -> int | None:
        return live_pid(self._pid_file("gateway"), "gateway.cli")

    def gateway_start(self, backend: Backend) -> None:
        layout = self.layout
        if (pid := self.gateway_pid()) is not None:
            say(f"gateway already running (port {layout.gateway_port}, pid {pid})")
            return
        check_free(layout.gateway_port, "gateway", layout.port_base)
        workers = ["--workers", str(layout.workers)] if layout.workers > 1 else []
        env = self._python_env() | {
            "CELLGATE_API_DATABASE_URL": backend.api_url(layout),
            "CELLGATE_REDIS_URL": f"redis://127.0.0.1:{layout.redis_port}/0",
            "CELLGATE_AUTH_MODE": os.environ.get("CELLGATE_AUTH_MODE") or "noauth",
        }
        pid = spawn(
            [
                layout.python,
                "-m",
                "gateway.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(layout.gateway_port),
                *workers,
            ],
            self._log("gateway"),
            self._pid_file("gateway"),
            cwd=REPO,
            env=env,
        )
        self._wait_gateway(pid, 60)
        say(f"gateway started (http://127.0.0.1:{layout.gateway_port}, pid {pid})")

    def _wait_gateway(self, pid: int, seconds: float) -> None:
        """Until ``/readyz`` answers 200."""
        deadline = time.monotonic() + seconds
        url = f"http://127.0.0.1:{self.layout.gateway_port}/readyz"
        while True:
            try:
                # /readyz probes every cell within the gateway's cell deadline: give it time.
                with urllib.request.urlopen(url, timeout=30) as answer:
                    answer.read()
                return
            except Exception:  # not up yet, or not ready (503): ask again
                pass
            log = self._log("gateway")
            if not pid_alive(pid):
                _tail(log)
                raise StackError(f"the gateway exited (log: {log})")
            if time.monotonic() >= deadline:
                raise StackError(f"the gateway was not ready within {seconds:g} s (log: {log})")
            time.sleep(0.2)

    def gateway_stop(self) -> None:
        self._stop("gateway", "gateway.cli")

    # -- Prometheus (optional): scrapes the gateway's /metrics, as docker-compose's does --

    def prometheus_wanted(self) -> bool:
        return self.layout.prometheus == "auto" and shutil.which("prometheus") is not None

    def prometheus_pid(self) -> int | None:
        return live_pid(self._pid_file("prometheus"), "prometheus")

    def prometheus_start(self) -> None:
        layout = self.layout
        if not self.prometheus_wanted():
            say(
                f"prometheus skipped (CELLGATE_DEVSTACK_PROMETHEUS={layout.prometheus}, or no"
                " prometheus binary: Debian's package 'prometheus')"
            )
            return
        if (pid := self.prometheus_pid()) is not None:
            say(f"prometheus already running (port {layout.prom_port}, pid {pid})")
            return
        check_free(layout.prom_port, "prometheus", layout.port_base)
        (layout.prom_dir / "data").mkdir(parents=True, exist_ok=True)
        config = layout.prom_dir / "prometheus.yml"
        config.write_text(_PROMETHEUS_YML.format(port=layout.gateway_port))
        pid = spawn(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={layout.prom_dir / 'data'}",
                "--storage.tsdb.retention.time=2d",
                f"--web.listen-address=127.0.0.1:{layout.prom_port}",
            ],
            self._log("prometheus"),
            self._pid_file("prometheus"),
        )
        if not wait_port(layout.prom_port, 30):
            raise StackError(
                f"prometheus did not listen on {layout.prom_port} (log: {self._log('prometheus')})"
            )
        say(
            f"prometheus started (http://127.0.0.1:{layout.prom_port}, pid {pid}, scraping the"
            " gateway every 5 s)"
        )

    def prometheus_stop(self) -> None:
        self._stop("prometheus", "prometheus")
