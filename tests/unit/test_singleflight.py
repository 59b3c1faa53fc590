"""Single-flight: concurrent callers of one key share one execution, its result and its
exception; a caller that goes away does not cancel the work for the others."""

from __future__ import annotations

import asyncio

import pytest

from cache.singleflight import SingleFlight


class Work:
    """A coroutine function that counts its runs and waits for a release."""

    def __init__(self, result: object = "done", error: Exception | None = None) -> None:
        self.runs = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.finished = False
        self.result = result
        self.error = error

    async def __call__(self) -> object:
        self.runs += 1
        self.started.set()
        await self.release.wait()
        self.finished = True
        if self.error is not None:
            raise self.error
        return self.result


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_concurrent_callers_share_one_run() -> None:
    flight: SingleFlight[object] = SingleFlight()
    work = Work(result={"page": 1})
    callers = [asyncio.create_task(flight.do("k", work)) for _ in range(32)]
    await work.started.wait()
    await _settle()
    work.release.set()
    results = await asyncio.gather(*callers)
    assert work.runs == 1
    assert flight.coalesced == 31
    assert all(r is results[0] for r in results)  # the very same object
    assert results[0] == {"page": 1}


async def test_distinct_keys_run_separately() -> None:
    flight: SingleFlight[object] = SingleFlight()
    a, b = Work("a"), Work("b")
    ta = asyncio.create_task(flight.do("a", a))
    tb = asyncio.create_task(flight.do("b", b))
    await asyncio.gather(a.started.wait(), b.started.wait())
    a.release.set()
    b.release.set()
    assert await asyncio.gather(ta, tb) == ["a", "b"]
    assert (a.runs, b.runs, flight.coalesced) == (1, 1, 0)


async def test_a_finished_key_runs_again() -> None:
    flight: SingleFlight[object] = SingleFlight()
    work = Work()
    work.release.set()
    assert await flight.do("k", work) == "done"
    assert await flight.do("k", work) == "done"
    assert work.runs == 2
    assert flight.coalesced == 0
    assert not flight._running  # nothing left behind


async def test_an_exception_reaches_every_caller() -> None:
    flight: SingleFlight[object] = SingleFlight()
    work = Work(error=RuntimeError("cell exploded"))
    callers = [asyncio.create_task(flight.do("k", work)) for _ in range(8)]
    await work.started.wait()
    await _settle()
    work.release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert work.runs == 1
    assert all(isinstance(r, RuntimeError) and str(r) == "cell exploded" for r in results)
    assert not flight._running
    # The failure is not remembered: the next call runs again.
    retry = Work(result="ok")
    retry.release.set()
    assert await flight.do("k", retry) == "ok"


async def test_a_cancelled_caller_does_not_cancel_the_work() -> None:
    flight: SingleFlight[object] = SingleFlight()
    work = Work()
    first = asyncio.create_task(flight.do("k", work))  # the caller that started the work
    await work.started.wait()
    others = [asyncio.create_task(flight.do("k", work)) for _ in range(3)]
    await _settle()
    first.cancel()
    others[0].cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    with pytest.raises(asyncio.CancelledError):
        await others[0]
    assert not work.finished
    work.release.set()
    assert await asyncio.gather(*others[1:]) == ["done", "done"]
    assert work.runs == 1
    assert work.finished


async def test_work_finishes_even_if_every_caller_leaves() -> None:
    flight: SingleFlight[object] = SingleFlight()
    work = Work()
    caller = asyncio.create_task(flight.do("k", work))
    await work.started.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    # A caller arriving now still joins the running work instead of starting another.
    late = asyncio.create_task(flight.do("k", work))
    await _settle()
    work.release.set()
    assert await late == "done"
    assert work.runs == 1


async def test_a_caller_timing_out_leaves_the_others_served() -> None:
    flight: SingleFlight[object] = SingleFlight()
    work = Work()
    patient = asyncio.create_task(flight.do("k", work))
    await work.started.wait()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await flight.do("k", work)
    work.release.set()
    assert await patient == "done"
    assert work.runs == 1
