"""InferencePool: deadline refusal before queueing, overload, round-robin fairness, background jobs."""

from __future__ import annotations

import asyncio
import threading

import pytest

from models.pool import DeadlineUnreachable, InferencePool, PoolBusy, PoolOverloaded


class Gate:
    """A job that blocks its worker until released."""

    def __init__(self) -> None:
        self.started, self.release = threading.Event(), threading.Event()

    def __call__(self) -> str:
        self.started.set()
        self.release.wait(10)
        return "gate"


async def _occupy(pool: InferencePool, station: str, cost: float) -> tuple[Gate, asyncio.Task]:
    gate = Gate()
    task = asyncio.create_task(pool.run(station, gate, cost=cost))
    await asyncio.to_thread(gate.started.wait, 5)
    return gate, task


async def test_job_that_cannot_meet_its_deadline_is_refused_at_once():
    ran = []
    async with InferencePool() as pool:
        now = asyncio.get_running_loop().time()
        with pytest.raises(DeadlineUnreachable, match=r"would take 1000 ms .* only (500|49[0-9]) ms remain") as err:
            await pool.run("lane-1", lambda: ran.append(1), deadline=now + 0.5, cost=1.0)
        assert err.value.station == "lane-1"
        assert await pool.run("lane-1", lambda: "ok", deadline=now + 5, cost=0.01) == "ok"
        assert ran == []
        assert pool.stats()["stations"]["lane-1"]["refused_deadline"] == 1


async def test_queue_ahead_counts_towards_the_deadline():
    async with InferencePool(workers=1) as pool:
        loop = asyncio.get_running_loop()
        gate, busy = await _occupy(pool, "a", cost=0.4)
        waiting = [asyncio.create_task(pool.run("b", lambda: "b", cost=0.4)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(DeadlineUnreachable):
            await pool.run("c", lambda: "c", deadline=loop.time() + 0.5, cost=0.2)
        later = asyncio.create_task(pool.run("c", lambda: "c", deadline=loop.time() + 60, cost=0.2))
        await asyncio.sleep(0)
        gate.release.set()
        assert await busy == "gate"
        assert await asyncio.gather(*waiting, later) == ["b", "b", "c"]


async def test_full_station_queue_is_refused_and_counted():
    async with InferencePool(workers=1, queue_per_station=2) as pool:
        gate, busy = await _occupy(pool, "a", cost=0.1)
        queued = [asyncio.create_task(pool.run("a", lambda: 1)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(PoolOverloaded, match="station a is full"):
            await pool.run("a", lambda: 1)
        other = asyncio.create_task(pool.run("b", lambda: 2))
        await asyncio.sleep(0)
        gate.release.set()
        assert await asyncio.gather(busy, *queued, other) == ["gate", 1, 1, 2]
        stats = pool.stats()["stations"]
        assert stats["a"]["refused_overload"] == 1 and stats["a"]["completed"] == 3


async def test_stations_are_served_round_robin():
    order: list[str] = []
    async with InferencePool(workers=1, queue_per_station=16) as pool:
        gate, busy = await _occupy(pool, "warm", cost=0.0)
        jobs = [asyncio.create_task(pool.run("a", lambda: order.append("a"))) for _ in range(6)]
        await asyncio.sleep(0)
        jobs += [asyncio.create_task(pool.run("b", lambda: order.append("b"))) for _ in range(2)]
        jobs += [asyncio.create_task(pool.run("c", lambda: order.append("c"))) for _ in range(1)]
        await asyncio.sleep(0)
        gate.release.set()
        await asyncio.gather(busy, *jobs)
    assert order == ["a", "b", "c", "a", "b", "a", "a", "a", "a"]


async def test_background_job_is_skipped_when_busy_and_runs_when_idle():
    async with InferencePool(workers=1) as pool:
        assert await pool.run("s/shadow", lambda: "bg", background=True) == "bg"
        gate, busy = await _occupy(pool, "s", cost=0.1)
        with pytest.raises(PoolBusy):
            await pool.run("s/shadow", lambda: "bg", background=True)
        gate.release.set()
        await busy
        assert pool.stats()["stations"]["s/shadow"]["skipped_busy"] == 1


async def test_cancelled_waiting_job_never_runs():
    ran = []
    async with InferencePool(workers=1) as pool:
        gate, busy = await _occupy(pool, "a", cost=0.1)
        waiting = asyncio.create_task(pool.run("a", lambda: ran.append(1)))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        gate.release.set()
        await busy
        assert await pool.run("a", lambda: "after") == "after"
    assert ran == []
    assert pool.stats()["stations"]["a"]["cancelled"] == 1


async def test_job_errors_reach_the_caller_and_are_counted():
    async with InferencePool() as pool:
        with pytest.raises(ZeroDivisionError):
            await pool.run("a", lambda: 1 / 0)
        assert pool.stats()["stations"]["a"]["failed"] == 1


async def test_event_loop_keeps_running_during_inference():
    async with InferencePool() as pool:
        gate, busy = await _occupy(pool, "a", cost=0.1)
        ticks = 0
        for _ in range(5):
            await asyncio.sleep(0.001)
            ticks += 1
        gate.release.set()
        assert await busy == "gate" and ticks == 5


async def test_detect_in_pool_refuses_a_scan_too_big_for_its_deadline(detector):
    from models.scan import Scan
    from models.testgraphs import air, paint_square

    high, low = air(200, 200)
    box = paint_square(high, low, 20, 20)
    async with InferencePool() as pool:
        loop = asyncio.get_running_loop()
        found = await pool.detect("lane-1", detector, Scan(high, low), deadline=loop.time() + 30)
        assert [d.box for d in found] == [box]
        huge = Scan(*air(20_000, 4_000))
        assert detector.estimate_seconds(huge.shape) > 100 * detector.tile_seconds
        budget = detector.estimate_seconds(huge.shape) / 2
        with pytest.raises(DeadlineUnreachable):
            await pool.detect("lane-1", detector, huge, deadline=loop.time() + budget)
