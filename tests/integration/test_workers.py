"""``cellgate serve --workers N`` as processes on the real PostgreSQL: N workers under one
parent share the port and answer, ``/metrics`` sums every worker whichever one answers,
gauges combine the running workers (a killed one is replaced and its gauges forgotten),
SIGTERM and Ctrl-C leave no process behind, a schema mismatch stops the server (exit status
2, no restart loop), and ``--workers 0`` is a usage error.

Which worker answered is read from outside: the worker processes from ``/proc``, and each
one's own counts from the files prometheus_client keeps per process in the parent's private
directory (no debug endpoint).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from cells.seeding import cell_uuid
from tests.support.cellsets import MISSING_COLUMN, CellSet
from tests.support.liveserver import free_port
from tests.support.serve import START_TIMEOUT_S, cli, serve_env, wait_for_banner

pytestmark = pytest.mark.integration

WORKERS = 2
LIST = "/v2.1/servers"
HEADERS = {"X-Auth-Token": "demo:demo"}
STOP_TIMEOUT_S = 30


def _ppid_and_state(pid: int) -> tuple[int, str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: the fields follow the last ")".
    state, ppid = stat.rsplit(")", 1)[1].split()[:2]
    return int(ppid), state


def _alive(pid: int) -> bool:
    found = _ppid_and_state(pid)
    return found is not None and found[1] != "Z"


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (found := _ppid_and_state(int(entry.name))) is not None:
            parents[int(entry.name)] = found[0]
    family, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in family}
        grew = not more <= family
        family |= more
    return family - {pid}


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone meanwhile
        return b""


def _workers(pid: int) -> set[int]:
    """The uvicorn workers among ``pid``'s children (multiprocessing's spawned processes;
    its resource tracker is a child too)."""
    return {child for child in _descendants(pid) if b"spawn_main" in _cmdline(child)}


def _metrics_dir(worker: int) -> Path:
    environ = Path(f"/proc/{worker}/environ").read_bytes().split(b"\0")
    values = dict(item.decode().split("=", 1) for item in environ if b"=" in item)
    return Path(values["PROMETHEUS_MULTIPROC_DIR"])


def _requests_of(worker: int, route: str) -> float:
    """The HTTP requests ``worker`` itself counted for ``route`` (from its own file)."""
    files = [str(path) for path in _metrics_dir(worker).glob(f"counter_{worker}.db")]
    return sum(
        sample.value
        for family in MultiProcessCollector.merge(files)  # type: ignore[no-untyped-call]  # prometheus-client's MultiProcessCollector.merge is not annotated
        for sample in family.samples
        if sample.name == "cellgate_http_requests_total" and sample.labels["route"] == route
    )


def _counted(workers: set[int], route: str, expected: int) -> dict[int, float]:
    """Each worker's count for ``route`` once they add up to ``expected`` (a worker counts
    a request just after answering it), or as they are after a few seconds."""
    deadline = time.monotonic() + 10
    while True:
        counts = {worker: _requests_of(worker, route) for worker in workers}
        if sum(counts.values()) >= expected or time.monotonic() > deadline:
            return counts
        time.sleep(0.05)


@contextmanager
def serving_workers(
    tmp_path: Path, port: int, env: dict[str, str], *args: str
) -> Iterator[subprocess.Popen[str]]:
    """``cellgate serve --workers 2`` until its banner (every worker started); stopped with
    its process group if a test leaves it running (SIGTERM, so the parent removes its
    directory; SIGKILL if that does not do)."""
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            cli("serve", "--port", str(port), "--workers", str(WORKERS), *args),
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            start_new_session=True,  # its own process group, as a terminal would give it
        )
    try:
        line = wait_for_banner(process, stderr_path)
        assert f"with {WORKERS} worker processes" in line
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _stops_cleanly(process: subprocess.Popen[str], family: set[int], tmp_path: Path) -> None:
    """``process`` exits with status 0 and every process it started is gone."""
    assert process.wait(timeout=STOP_TIMEOUT_S) == 0, (tmp_path / "stderr.log").read_text()[-3000:]
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while (left := {pid for pid in family if _alive(pid)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"left running: {left}"


def _replaced(parent: int, dead: int, metrics_dir: Path) -> set[int]:
    """The workers of ``parent`` once another has replaced ``dead`` and ``dead``'s live
    gauges are gone (or what there is after START_TIMEOUT_S)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        now = _workers(parent)
        gone = not list(metrics_dir.glob(f"gauge_live*_{dead}.db"))
        if dead not in now and len(now) == WORKERS and gone:
            break
        time.sleep(0.1)
    return now


async def _get_many(port: int, count: int, concurrency: int = 6) -> None:
    # No keep-alive: every request is a new connection, which any worker may accept.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=HEADERS, limits=limits, timeout=30
    ) as client:
        for start in range(0, count, concurrency):
            batch = range(start, min(start + concurrency, count))
            responses = await asyncio.gather(
                *(client.get(LIST, params={"limit": 5 + i % 3}) for i in batch)
            )
            assert [r.status_code for r in responses] == [200] * len(batch)


def _scrape(port: int) -> dict[str, float]:
    """``name{label=value,...}`` → value, from one ``/metrics`` on a new connection."""
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
    assert response.status_code == 200
    return {
        sample.name + repr(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def _values(scrape: dict[str, float], name: str, **labels: str) -> list[float]:
    """The samples of ``name`` that carry ``labels`` (and maybe others)."""
    wanted = [f"({k!r}, {v!r})" for k, v in labels.items()]
    return [
        value
        for key, value in scrape.items()
        if key.startswith(name + "[") and all(label in key for label in wanted)
    ]


def _total(scrape: dict[str, float], name: str, **labels: str) -> float:
    return sum(_values(scrape, name, **labels))


async def test_workers_share_the_port_and_one_metrics_view(
    tmp_path: Path, pg_cells: CellSet
) -> None:
    port = free_port()
    env = serve_env(CELLGATE_API_DATABASE_URL=pg_cells.api_url)
    with serving_workers(tmp_path, port, env) as process:
        family = _descendants(process.pid)
        workers = _workers(process.pid)
        assert len(workers) == WORKERS, family
        metrics_dir = _metrics_dir(min(workers))
        assert {_metrics_dir(w) for w in workers} == {metrics_dir}

        # Enough listings that every worker answers some.
        sent = 0
        while sent < 600 and not all(_counted(workers, LIST, sent).values()):
            await _get_many(port, 30)
            sent += 30
        per_worker = _counted(workers, LIST, sent)
        assert all(per_worker.values()), per_worker
        assert sum(per_worker.values()) == sent

        # Scrape until every worker has answered one: each saw every worker's listings.
        scrapes: list[dict[str, float]] = []
        while len(scrapes) < 50 and not all(_requests_of(w, "/metrics") for w in workers):
            scrapes.append(_scrape(port))
        assert all(_requests_of(w, "/metrics") for w in workers)
        for scrape in scrapes:
            assert _total(scrape, "cellgate_http_requests_total", route=LIST) == sent
            assert (
                _total(scrape, "cellgate_http_request_duration_seconds_count", route=LIST) == sent
            )
            assert _total(scrape, "cellgate_list_requests_total", outcome="complete") == sent
            # A gauge is one sample per cell (the worst breaker of the workers), not per pid.
            breakers = {k: v for k, v in scrape.items() if k.startswith("cellgate_cell_breaker")}
            assert len(breakers) == len(pg_cells.cells), breakers
            assert set(breakers.values()) == {0.0}

        process.send_signal(signal.SIGTERM)
        _stops_cleanly(process, family, tmp_path)
    assert not metrics_dir.exists()


async def test_gauges_combine_the_running_workers(tmp_path: Path, pg_cells: CellSet) -> None:
    dead = {
        "name": "deadcell",
        "uuid": "11111111-2222-3333-4444-555555555555",
        "database_url": f"postgresql://postgres@127.0.0.1:{free_port()}/nothing",
    }
    live = [
        {"name": c.name, "uuid": cell_uuid(c.name), "database_url": c.url} for c in pg_cells.cells
    ]
    env = serve_env(
        CELLGATE_API_DATABASE_URL=pg_cells.api_url,
        CELLGATE_CELLS=json.dumps([*live, dead]),
        CELLGATE_BREAKER_FAILURES="2",
    )
    port = free_port()
    with serving_workers(tmp_path, port, env) as process:
        workers = _workers(process.pid)
        # One listing: its worker's second failure on deadcell (the first was at start-up)
        # opens that worker's breaker; the other worker's stays closed.
        await _get_many(port, 1)
        served = {w for w, n in _counted(workers, LIST, 1).items() if n}
        assert len(served) == 1
        scrapes: list[dict[str, float]] = []
        while len(scrapes) < 50 and not all(_requests_of(w, "/metrics") for w in workers):
            scrapes.append(_scrape(port))
        assert all(_requests_of(w, "/metrics") for w in workers)
        for scrape in scrapes:
            # One sample each (no pid label): the worst breaker of the running workers,
            # and the last listing of any.
            assert _values(scrape, "cellgate_cell_breaker_state", cell="deadcell") == [2]
            assert _values(scrape, "cellgate_cell_breaker_state", cell="cell1") == [0]
            assert _values(scrape, "cellgate_cells_unavailable_last") == [1]

        # The worker with the open breaker dies: uvicorn starts another, and the dead one's
        # gauges stop counting (its counters stay in the sums).
        (opened,) = served
        metrics_dir = _metrics_dir(opened)
        os.kill(opened, signal.SIGKILL)
        now = _replaced(process.pid, opened, metrics_dir)
        assert len(now) == WORKERS, now
        assert not list(metrics_dir.glob(f"gauge_live*_{opened}.db"))
        scrape = _scrape(port)
        assert _values(scrape, "cellgate_cell_breaker_state", cell="deadcell") == [0]
        assert _total(scrape, "cellgate_http_requests_total", route=LIST) == 1

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_TIMEOUT_S) == 0


def test_workers_load_the_config_file_and_ctrl_c_stops_them(
    tmp_path: Path, pg_cells: CellSet
) -> None:
    # The API database only in the file, and --log-format overriding the file's format:
    # workers that missed either would not start, or would log JSON.
    config = tmp_path / "cellgate.toml"
    config.write_text(f'api_database_url = "{pg_cells.api_url}"\nlog_format = "json"\n')
    args = ("--config", str(config), "--log-format", "text")
    with serving_workers(tmp_path, free_port(), serve_env(), *args) as process:
        family = _descendants(process.pid)
        assert len(_workers(process.pid)) == WORKERS
        os.killpg(process.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
        _stops_cleanly(process, family, tmp_path)
    stderr = (tmp_path / "stderr.log").read_text()
    started = [line for line in stderr.splitlines() if "Started server process" in line]
    assert len(started) == WORKERS, stderr[-3000:]
    assert not [line for line in started if line.startswith("{")]
    assert "Traceback" not in stderr


def test_a_schema_mismatch_stops_the_workers_with_status_2(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    cell_set: CellSet = request.getfixturevalue("broken")
    env = serve_env(CELLGATE_API_DATABASE_URL=cell_set.api_url)
    result = subprocess.run(
        cli("serve", "--port", str(free_port()), "--workers", "2", "--log-format", "text"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.count("cellgate: the databases lack tables or columns") == 1
    assert f"  {MISSING_COLUMN}\n" in result.stderr
    assert "CELLGATE_CHECK_SCHEMA_AT_STARTUP=false" in result.stderr
    # Each worker started once: none was restarted.
    assert result.stderr.count("Started server process") <= WORKERS
    assert "serving on" not in result.stdout


@pytest.mark.parametrize("workers", ["0", "-1", "two"])
def test_workers_must_be_at_least_one(workers: str) -> None:
    result = subprocess.run(
        cli("serve", "--port", str(free_port()), "--workers", workers),
        env=serve_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "argument --workers" in result.stderr
    assert "at least 1" in result.stderr
    assert "Traceback" not in result.stderr
