"""Stopping the processes a run starts (gateways, locust, delay proxies): one signal, a
grace period, then harder ones."""

from __future__ import annotations

import signal
import subprocess

__all__ = ["stop_process"]


def stop_process(
    proc: subprocess.Popen[bytes], first: int = signal.SIGTERM, grace_s: float = 10.0
) -> None:
    """Send ``first`` and wait ``grace_s``; then SIGTERM (when ``first`` was not) for 5 s,
    then SIGKILL. Nothing when it has already exited."""
    if proc.poll() is not None:
        return
    proc.send_signal(first)
    try:
        proc.wait(grace_s)
        return
    except subprocess.TimeoutExpired:
        pass
    if first != signal.SIGTERM:
        proc.terminate()
        try:
            proc.wait(5)
            return
        except subprocess.TimeoutExpired:
            pass
    proc.kill()
    proc.wait(10)
