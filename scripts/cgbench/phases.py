"""HTTP phases against the two ``cellgate serve`` gateways: first pages, walks, throughput."""

from __future__ import annotations

import statistics
import time

from cgbench.console import say
from cgbench.httpconn import HttpConn, body_ids, first_target, next_target, ok_response
from cgbench.load import load
from cgbench.metrics import cost_per_request, metric_delta
from cgbench.profiles import SCENARIOS, TOKENS, WHOS, Layout, Profile, ServerName, Who, scenario_key
from cgbench.results import HttpFirst, HttpWalk, Latency, LoadResult
from cgbench.servers import Servers, exclusive


async def http_first_pages(
    servers: Servers, profile: Profile
) -> dict[str, dict[ServerName, HttpFirst]]:
    """Sequential first pages, one keep-alive connection per server, requests alternating
    between the servers; cell work per request from their ``/metrics``."""
    out: dict[str, dict[ServerName, HttpFirst]] = {}
    names = list(servers)
    conns = {n: HttpConn("127.0.0.1", s.port) for n, s in servers.items()}
    try:
        for who, limit in SCENARIOS:
            say(f"HTTP first page: {who} limit {limit} ({profile.http_n[limit]} per server)")
            target, token = first_target(who, limit), TOKENS[who]
            errors = {n: 0 for n in names}
            bodies: dict[ServerName, bytes] = {}
            for n in names:
                for _ in range(profile.warmup):
                    status, headers, bodies[n] = await conns[n].get(target, token)
                    if not ok_response(status, headers):
                        raise RuntimeError(f"{n}: {status} {bodies[n][:300]!r}")
            same = body_ids(bodies[names[0]]) == body_ids(bodies[names[1]])
            before = {n: await servers[n].metrics() for n in names}
            lat: dict[ServerName, list[float]] = {n: [] for n in names}
            cap = time.perf_counter() + profile.phase_cap_s
            for i in range(profile.http_n[limit]):
                if i >= 5 and time.perf_counter() > cap:
                    say(f"  time cap: {i} samples per server")
                    break
                for n in names if i % 2 == 0 else names[::-1]:
                    t = time.perf_counter()
                    status, headers, _ = await conns[n].get(target, token)
                    elapsed = time.perf_counter() - t
                    if ok_response(status, headers):
                        lat[n].append(elapsed)
                    else:
                        errors[n] += 1
            after = {n: await servers[n].metrics() for n in names}
            out[scenario_key(who, limit)] = {
                n: HttpFirst(
                    latency=Latency.of(lat[n]),
                    errors=errors[n],
                    same_rows=same,
                    cost=cost_per_request(
                        metric_delta(before[n], after[n]), len(lat[n]) + errors[n]
                    ),
                )
                for n in names
            }
    finally:
        for c in conns.values():
            c.close()
    return out


async def http_walk(
    conn: HttpConn, who: Who, limit: int, pages: int, keep_ids: bool
) -> tuple[list[float], list[str]]:
    """Follow ``next`` links from the first page: per-page latencies, and the ids seen."""
    target: str | None = first_target(who, limit)
    per_page: list[float] = []
    ids: list[str] = []
    while target is not None and len(per_page) < pages:
        t = time.perf_counter()
        status, headers, body = await conn.get(target, TOKENS[who])
        per_page.append(time.perf_counter() - t)
        if not ok_response(status, headers):
            raise RuntimeError(f"walk page {len(per_page)}: {status} {body[:300]!r}")
        if keep_ids:
            ids.extend(body_ids(body))
        target = next_target(body)
    return per_page, ids


async def http_walks(servers: Servers, profile: Profile) -> dict[Who, dict[ServerName, HttpWalk]]:
    """Walks per server after one warm-up walk, the servers alternating per repetition."""
    out: dict[Who, dict[ServerName, HttpWalk]] = {}
    names = list(servers)
    conns = {n: HttpConn("127.0.0.1", s.port) for n, s in servers.items()}
    try:
        for who in WHOS:
            say(
                f"HTTP walks: {who}, {profile.walk_pages} pages of {profile.walk_limit}, "
                f"{profile.walk_reps} rep(s)"
            )
            for n in names:  # warm the deeper pages once
                await http_walk(conns[n], who, profile.walk_limit, profile.walk_pages, False)
            before = {n: await servers[n].metrics() for n in names}
            walks: dict[ServerName, list[list[float]]] = {n: [] for n in names}
            ids: dict[ServerName, list[str]] = {}
            cap = time.perf_counter() + profile.phase_cap_s
            for rep in range(profile.walk_reps):
                if rep >= 1 and time.perf_counter() > cap:
                    say(f"  time cap: {rep} walk(s) per server")
                    break
                for n in names if rep % 2 == 0 else names[::-1]:
                    per_page, got = await http_walk(
                        conns[n], who, profile.walk_limit, profile.walk_pages, rep == 0
                    )
                    walks[n].append(per_page)
                    if rep == 0:
                        ids[n] = got
            after = {n: await servers[n].metrics() for n in names}
            same = ids[names[0]] == ids[names[1]]
            out[who] = {
                n: HttpWalk(
                    total_ms=statistics.median(sum(w) * 1000 for w in walks[n]),
                    per_page_ms=[
                        statistics.median(w[i] * 1000 for w in walks[n])
                        for i in range(min(len(w) for w in walks[n]))
                    ],
                    pages=min(len(w) for w in walks[n]),
                    rows=len(ids[n]),
                    same_rows=same,
                    cost=cost_per_request(
                        metric_delta(before[n], after[n]), sum(len(w) for w in walks[n])
                    ),
                )
                for n in names
            }
    finally:
        for c in conns.values():
            c.close()
    return out


async def http_throughput(
    servers: Servers, profile: Profile, clients: int, layout: Layout
) -> dict[str, dict[ServerName, LoadResult]]:
    """Closed-loop load per scenario, one gateway at a time, in alternating order."""
    out: dict[str, dict[ServerName, LoadResult]] = {}
    names = list(servers)
    for i, (who, limit) in enumerate(SCENARIOS):
        out[scenario_key(who, limit)] = {}
        for n in names if i % 2 == 0 else names[::-1]:
            await exclusive(servers, n, clients)
            say(f"throughput: {n}, {who} limit {limit}, {clients} clients, {profile.tput_s:g} s")
            out[scenario_key(who, limit)][n] = await load(
                servers[n],
                who,
                limit,
                clients,
                profile.tput_s,
                profile.tput_warmup_s,
                layout.dbs_of(n),
            )
    return out
