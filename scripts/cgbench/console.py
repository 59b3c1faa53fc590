"""Progress lines on stdout (the bench is a CLI: this is its output, not logging)."""

from __future__ import annotations

import time


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)
