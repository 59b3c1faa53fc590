"""Locust workload for a running cellgate (used by scripts/bench as a cross-check).

    locust -f scripts/locustfile.py --headless -u 8 -r 8 -t 15s --host http://127.0.0.1:PORT

Closed-loop users (no think time), alternately an administrator listing every project
(``X-Auth-Token: admin:admin`` + ``all_tenants=1``) and the project ``demo``
(``X-Auth-Token: demo:demo``), on ``GET /v2.1/servers/detail``:

- weight 4: a first page at ``limit=100``;
- weight 1: a first page at ``limit=1000``;
- weight 1: a walk of up to ``BENCH_WALK_PAGES`` (default 5) pages at ``limit=1000``,
  following ``servers_links`` (pages 2.. exercise the marker / cached-frontier path).

Each first page carries a distinct ``bench_nonce`` parameter; the gateway strips it at the
default microversion, as Nova does, so identical requests are still coalesced and cached
unless the gateway is run with ``CELLGATE_COALESCE_LISTINGS=false`` and
``CELLGATE_PAGE_CACHE_TTL_S=0``, as ``scripts/bench`` runs it.
A response that is not a 200, or that names unavailable cells (``X-Cells-Unavailable``),
counts as a failure.
"""

from __future__ import annotations

import itertools
import os
from urllib.parse import urlsplit

from locust import FastHttpUser, constant, task

_TOKENS = (("admin", "admin:admin", "&all_tenants=1"), ("demo", "demo:demo", ""))
_users = itertools.count()
_nonce = itertools.count()
WALK_PAGES = int(os.environ.get("BENCH_WALK_PAGES", "5"))


class ServerLister(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.who, token, self.scope = _TOKENS[next(_users) % len(_TOKENS)]
        self.headers = {"X-Auth-Token": token, "Accept": "application/json"}

    def _get(self, path: str, name: str) -> dict[str, object] | None:
        with self.client.get(
            path, headers=self.headers, name=name, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
                return None
            if response.headers.get("X-Cells-Unavailable"):
                response.failure(f"cells unavailable: {response.headers['X-Cells-Unavailable']}")
                return None
            body: dict[str, object] = response.json()
            response.success()
            return body

    def _first(self, limit: int, name: str) -> dict[str, object] | None:
        path = f"/v2.1/servers/detail?limit={limit}{self.scope}&bench_nonce={next(_nonce)}"
        return self._get(path, f"{name} [{self.who}]")

    @task(4)
    def first_page_100(self) -> None:
        self._first(100, "first page limit=100")

    @task(1)
    def first_page_1000(self) -> None:
        self._first(1000, "first page limit=1000")

    @task(1)
    def walk(self) -> None:
        body = self._first(1000, "walk page 1")
        for _ in range(WALK_PAGES - 1):
            links = body.get("servers_links") if body else None
            if not isinstance(links, list):
                return
            href = next((lk["href"] for lk in links if lk.get("rel") == "next"), None)
            if href is None:
                return
            parts = urlsplit(href)
            body = self._get(f"{parts.path}?{parts.query}", f"walk page 2+ [{self.who}]")
