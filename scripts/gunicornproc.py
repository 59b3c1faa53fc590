"""An OpenStack service's WSGI app served by gunicorn from the service's own venv: start it
in a session of its own (its workers die with it), wait until it answers, stop it.

Shared by :mod:`keystone_server`, :mod:`nova_api` and :mod:`neutron_api`, which differ only
in their configuration files and the URL that says they are up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType

__all__ = ["exit_on_signals", "install_then_serve", "serve", "stop"]


def serve(
    venv: Path, work: Path, probe_url: str, name: str, timeout_s: float
) -> subprocess.Popen[bytes]:
    """``venv``'s gunicorn with ``work``'s ``gunicorn.conf.py`` (everything in the file,
    nothing on the command line: oslo.config parses the server's ``sys.argv``), logging to
    ``work/gunicorn.log``; returns once ``probe_url`` answers, raises if it never does."""
    with open(work / "gunicorn.log", "ab") as log:
        proc = subprocess.Popen(
            [str(venv / "bin" / "gunicorn")],
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _ready(proc, probe_url, name, timeout_s, work)
    except BaseException:
        stop(proc)
        raise
    return proc


def _ready(
    proc: subprocess.Popen[bytes], url: str, name: str, timeout_s: float, work: Path
) -> None:
    deadline = time.monotonic() + timeout_s
    while proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer at {url}") from None
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn exited with {proc.returncode}; see {work}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGCONT (a test may have stopped it) then SIGTERM to gunicorn's session, SIGKILL
    after 10 s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGCONT)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def exit_on_signals() -> None:
    """SIGTERM and SIGINT end the process through ``SystemExit`` (``finally`` blocks run)."""
    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, _exit)


def install_then_serve(
    label: str, command: str, install: Callable[[], Path], serve_venv: Callable[[Path], int]
) -> int:
    """The end of each service script's ``main``: build (or reuse) the venv, then serve
    from it unless the ``command`` was ``install``; a venv that cannot be built is exit
    status 1 with a message naming ``label``."""
    try:
        venv = install()
    except subprocess.CalledProcessError as exc:
        print(f"{label}: cannot build the venv: {exc}", file=sys.stderr)
        return 1
    if command == "install":
        return 0
    return serve_venv(venv)
