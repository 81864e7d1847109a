"""StripDetector: streamed results equal batch results; work after the last line is one strip."""

from __future__ import annotations

import asyncio

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import pytest

from models.errors import ScanFormatError
from models.pool import InferencePool
from models.scan import Scan
from models.streaming import StripDetector, stream_detect
from models.testgraphs import air, paint_square, scatter


@pytest.mark.parametrize(("height", "block"), [(1000, 37), (1000, 1), (1000, 1000), (96, 5), (128, 64), (224, 17)])
def test_streamed_equals_batch(detector, height, block):
    high, low, objects = scatter(height, 304, 80, seed=height + block)
    batch = detector.detect(Scan(high, low))
    assert stream_detect(detector, high, low, block=block) == batch
    assert sorted((d.label, d.box) for d in batch) == sorted(objects)


def test_strips_run_while_lines_arrive_and_finish_runs_one_strip(detector):
    high, low, _ = scatter(4000, 200, 50, seed=1)
    strip = StripDetector(detector, 200)
    for y in range(0, 4000, 50):
        strip.feed(high[y : y + 50], low[y : y + 50])
        assert strip.strips_done == max(0, (y + 50 - 128) // 96 + 1)
    before = strip.strips_done
    ys, _ = detector.tile_grid((4000, 200))
    assert len(ys) - before <= 1
    strip.finish()
    assert strip.strips_done == len(ys)
    assert max(b.shape[0] for b in strip._buf.values()) <= 2 * 128


def test_object_in_the_last_partial_strip_is_found(detector):
    high, low = air(1000, 200)
    want = paint_square(high, low, 964, 20)
    assert [(d.label, d.box) for d in stream_detect(detector, high, low, block=64)] == [("metal", want)]


async def test_async_streaming_through_the_pool_equals_batch(detector):
    high, low, _ = scatter(1500, 304, 80, seed=9)
    batch = detector.detect(Scan(high, low))
    async with InferencePool(workers=2, queue_per_station=64) as pool:
        async with StripDetector(detector, 304, pool=pool, station="gantry-1") as strip:
            for y in range(0, 1500, 100):
                await strip.feed_async(high[y : y + 100], low[y : y + 100])
                await asyncio.sleep(0)
            loop = asyncio.get_running_loop()
            assert await strip.finish_async(deadline=loop.time() + 30) == batch
        assert pool.stats()["stations"]["gantry-1"]["completed"] == len(detector.tile_grid((1500, 304))[0])


async def test_async_streaming_without_pool_uses_a_thread(detector):
    high, low, _ = scatter(400, 200, 10, seed=2)
    strip = StripDetector(detector, 200)
    await strip.feed_async(high, low)
    assert await strip.finish_async() == detector.detect(Scan(high, low))


def test_wrong_width_and_empty_scan_are_refused(detector):
    strip = StripDetector(detector, 200)
    with pytest.raises(ScanFormatError, match="300 pixels wide"):
        strip.feed(*air(10, 300))
    with pytest.raises(ScanFormatError, match="without any lines"):
        strip.finish()
    with pytest.raises(ScanFormatError):
        strip.feed(np.zeros((4, 200), np.float32), np.zeros((4, 200), np.float32))


async def test_mixing_sync_and_async_is_refused(detector):
    strip = StripDetector(detector, 200)
    strip.feed(*air(10, 200))
    with pytest.raises(RuntimeError, match="async mode after sync"):
        await strip.feed_async(*air(10, 200))


@given(height=st.integers(1, 700), cuts=st.lists(st.integers(1, 200), min_size=1, max_size=40),
       seed=st.integers(0, 1000))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_chunking_gives_the_batch_result(detector, height, cuts, seed):
    high, low = air(height, 200)
    if height >= 44:
        high, low, _ = scatter(height, 200, 20, seed)
    strip = StripDetector(detector, 200)
    y, i = 0, 0
    while y < height:
        n = cuts[i % len(cuts)]
        strip.feed(high[y : y + n], low[y : y + n])
        y, i = y + n, i + 1
    assert strip.finish() == detector.detect(Scan(high, low))


async def test_strips_refused_by_a_full_pool_fail_the_scan_at_finish(detector):
    from models.pool import PoolOverloaded

    high, low, _ = scatter(2000, 200, 10, seed=4)
    async with InferencePool(workers=1, queue_per_station=1) as pool:
        async with StripDetector(detector, 200, pool=pool, station="g") as strip:
            await strip.feed_async(high, low)  # every strip at once: more than the queue holds
            with pytest.raises(PoolOverloaded):
                await strip.finish_async()
        assert pool.stats()["stations"]["g"]["refused_overload"] >= 1
