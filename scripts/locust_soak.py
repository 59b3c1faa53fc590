"""Locust workload of the saturation soak (``python3 -m cgbench.soak``, issue #10).

    locust -f scripts/locust_soak.py --headless -u 8 -r 8 -t 600s --host http://127.0.0.1:PORT

Closed-loop users (no think time: the soak saturates the gateway) that mix what Nova's
clients do. Each task picks whom it acts as (noauth tokens ``user:project``): the
administrator listing every project (``admin:admin`` + ``all_tenants=1``) weight 2, the
largest project ``demo`` weight 3, and ``proj-01`` (large), ``proj-03``, ``proj-07``
(smaller) weight 1 each. Task weights (out of 19 task picks):

====== ================================================================================
weight task
====== ================================================================================
5      first page of ``/servers/detail`` at ``limit=100``
2      first page of ``/servers/detail`` at ``limit=1000``
2      first page of the summary ``/servers`` at ``limit=100``
1      first page of the summary ``/servers`` at ``limit=1000``
2      deep walk: ``/servers/detail?limit=100`` then up to ``SOAK_WALK_PAGES`` (default 12)
       pages following ``servers_links`` (marker / cached-frontier path); only the
       scopes with thousands of rows (admin, ``demo``, ``proj-01``) so walks go deep
1      ``name=`` regex filter (``^web-1``, ``db-0``, ``^k8s-node``, ``café``)
1      ``status=ACTIVE``
1      ``sort_key=display_name&sort_dir=asc``
4      show one server, ``GET /v2.1/servers/{id}``, with an id this user saw in a listing
       for the same scope (a first page when it has seen none yet)
====== ================================================================================

A walk is up to 12 requests, so walks carry about half the requests although they are a
tenth of the task picks; first pages carry about 28%, shows 11%, filters and sorts 8%
(measured over a 60 s run at 8 users on 20,000 seeded instances).

First pages carry a distinct ``bench_nonce`` parameter, which does not make them distinct:
at the default microversion the gateway strips it, as Nova strips every name it does not
know below 2.75, so it is neither in the page cache's key nor in ``servers_links``.
Identical requests in flight share one fan-out and, for ``page_cache_ttl_s``, one rendered
page: the soak measures the gateway as it is configured by default.
A response that is not a 200 counts as a failure (a 503 says whether it carried
``Retry-After``). A page that names unavailable cells (``X-Cells-Unavailable``) is a failure
too, unless ``SOAK_PARTIAL_PAGES=follow`` (the chaos run, ``python3 -m cgbench.chaos``): then
it is an answer, as it is to Nova's clients, which never read that header, and a walk goes
on from its next link. Without that, every walk would stop at its first partial page while
a cell is down, and the request mix would shift from cheap resumed pages to first pages,
which is the load generator changing, not the gateway.
``scripts/locustfile.py`` stays the bench's smaller cross-check.
"""

from __future__ import annotations

import itertools
import os
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from locust import FastHttpUser, constant, task


@dataclass(frozen=True)
class Scope:
    """Whom a request acts as: a stats label, a noauth token, extra query parameters."""

    label: str
    token: str
    query: str = ""


ADMIN = Scope("admin", "admin:admin", "&all_tenants=1")
DEMO = Scope("demo", "demo:demo")
PROJECTS = tuple(Scope("project", f"u:proj-{n:02d}") for n in (1, 3, 7))
SCOPES = (ADMIN, DEMO, *PROJECTS)
SCOPE_WEIGHTS = (2, 3, 1, 1, 1)
WALK_SCOPES = (ADMIN, DEMO, PROJECTS[0])
NAME_REGEXES = ("^web-1", "db-0", "^k8s-node", "café")
WALK_PAGES = int(os.environ.get("SOAK_WALK_PAGES", "12"))
FOLLOW_PARTIAL = os.environ.get("SOAK_PARTIAL_PAGES", "fail") == "follow"
SEEN_IDS = 500  # ids remembered per user for the show task

_users = itertools.count()
_nonce = itertools.count()

Body = dict[str, object]


def next_href(body: Body | None) -> str | None:
    """The ``next`` link of a listing, if any."""
    links = body.get("servers_links") if body else None
    for link in links if isinstance(links, list) else []:
        if isinstance(link, dict) and link.get("rel") == "next":
            return str(link["href"])
    return None


def _status_failure(status: int, headers: Mapping[str, str]) -> str:
    """The failure a non-200 is recorded as; a 503 says whether it carried ``Retry-After``
    (the chaos run's honest refusal, ``python3 -m cgbench.chaos``, must)."""
    if status == 503:
        return f"status 503 ({'with' if headers.get('Retry-After') else 'without'} Retry-After)"
    return f"status {status}"


class SoakUser(FastHttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.rng = random.Random(next(_users))
        self.seen: deque[tuple[Scope, str]] = deque(maxlen=SEEN_IDS)

    def _scope(self) -> Scope:
        return self.rng.choices(SCOPES, SCOPE_WEIGHTS)[0]

    def _get(self, path: str, scope: Scope, name: str) -> Body | None:
        headers = {"X-Auth-Token": scope.token, "Accept": "application/json"}
        label = f"{name} [{scope.label}]"
        with self.client.get(path, headers=headers, name=label, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(_status_failure(response.status_code, response.headers))
                return None
            if response.headers.get("X-Cells-Unavailable") and not FOLLOW_PARTIAL:
                response.failure(f"cells unavailable: {response.headers['X-Cells-Unavailable']}")
                return None
            body: Body = response.json()
            response.success()
            return body

    def _list(self, scope: Scope, view: str, query: str, name: str) -> Body | None:
        path = f"/v2.1/servers{view}?{query}{scope.query}&bench_nonce={next(_nonce)}"
        body = self._get(path, scope, name)
        self._remember(scope, body)
        return body

    def _remember(self, scope: Scope, body: Body | None) -> None:
        servers = body.get("servers") if body else None
        if isinstance(servers, list) and servers:
            self.seen.append((scope, str(self.rng.choice(servers)["id"])))

    @task(5)
    def detail_100(self) -> None:
        self._list(self._scope(), "/detail", "limit=100", "detail limit=100")

    @task(2)
    def detail_1000(self) -> None:
        self._list(self._scope(), "/detail", "limit=1000", "detail limit=1000")

    @task(2)
    def summary_100(self) -> None:
        self._list(self._scope(), "", "limit=100", "summary limit=100")

    @task(1)
    def summary_1000(self) -> None:
        self._list(self._scope(), "", "limit=1000", "summary limit=1000")

    @task(2)
    def deep_walk(self) -> None:
        scope = self.rng.choice(WALK_SCOPES)
        body = self._list(scope, "/detail", "limit=100", "walk page 1")
        for _ in range(WALK_PAGES - 1):
            href = next_href(body)
            if href is None:
                return
            parts = urlsplit(href)
            body = self._get(f"{parts.path}?{parts.query}", scope, "walk page 2+")

    @task(1)
    def name_filter(self) -> None:
        regex = quote(self.rng.choice(NAME_REGEXES), safe="")
        self._list(self._scope(), "/detail", f"limit=100&name={regex}", "filter name=regex")

    @task(1)
    def status_filter(self) -> None:
        self._list(self._scope(), "/detail", "limit=100&status=ACTIVE", "filter status=ACTIVE")

    @task(1)
    def sorted_by_name(self) -> None:
        query = "limit=100&sort_key=display_name&sort_dir=asc"
        self._list(self._scope(), "/detail", query, "sort display_name asc")

    @task(4)
    def show(self) -> None:
        if not self.seen:
            self._list(self._scope(), "", "limit=100", "summary limit=100")
            return
        scope, server_id = self.rng.choice(self.seen)
        self._get(f"/v2.1/servers/{server_id}", scope, "show by id")
