"""Shadow model: agreement figures per class, never blocking the active path."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from models.detection import Detection
from models.pool import InferencePool
from models.runtime import load_detector
from models.scan import Scan
from models.shadow import ShadowRunner, match
from models.testgraphs import case, scatter
from polling import until


def test_match_counts_per_class():
    active = [Detection("knife", 0.9, (0, 0, 10, 10)), Detection("knife", 0.8, (50, 50, 60, 60)),
              Detection("gun", 0.7, (0, 0, 10, 10))]
    candidate = [Detection("knife", 0.9, (1, 1, 11, 11)), Detection("gun", 0.6, (30, 30, 40, 40)),
                 Detection("knife", 0.6, (100, 100, 110, 110))]
    got = match(active, candidate)
    assert dict(got["knife"]) == {"both": 1, "only_active": 1, "only_candidate": 1}
    assert dict(got["gun"]) == {"both": 0, "only_active": 1, "only_candidate": 1}


async def test_shadow_records_agreement_without_touching_active_results(fcos_dir, detector):
    candidate = load_detector(fcos_dir, overlap=32, thresholds={"organic": 0.99999})
    high, low, objects = scatter(400, 300, 30, seed=5)
    scan = Scan(high, low)
    active = detector.detect(scan)
    frozen = list(active)
    organic = sum(1 for label, _ in objects if label == "organic")
    metal = len(objects) - organic
    async with InferencePool() as pool, ShadowRunner(candidate, pool) as shadow:
        assert shadow.submit("lane-1", scan, active)
        await until(lambda: not shadow._tasks, "the shadow comparison finished", interval=0.005)
        stats = shadow.stats()
    assert active == frozen
    assert stats["scans"]["compared"] == 1 and stats["scans"]["verdict_agree"] == 1
    assert stats["classes"]["metal"] == {"both": metal, "only_active": 0, "only_candidate": 0}
    assert stats["classes"]["organic"] == {"both": 0, "only_active": organic, "only_candidate": 0}
    assert stats["candidate"]["sha256"] == candidate.info.sha256


async def test_shadow_is_skipped_while_the_pool_is_busy(detector):
    high, low, _ = scatter(200, 200, 3, seed=1)
    scan = Scan(high, low)
    async with InferencePool(workers=1) as pool, ShadowRunner(detector, pool, max_pending=1) as shadow:
        loop = asyncio.get_running_loop()
        active_job = asyncio.create_task(pool.run("lane-1", lambda: detector.detect(scan), deadline=loop.time() + 30))
        await asyncio.sleep(0)
        assert await shadow.compare("lane-1", scan, []) is None
        assert shadow.submit("lane-1", scan, [])
        assert not shadow.submit("lane-1", scan, [])
        await active_job
    stats = shadow.stats()["scans"]
    assert stats["skipped_busy"] >= 1 and stats["skipped_pending"] == 1


async def test_a_candidate_that_fails_counts_as_no_agreement(make_package, detector):
    """A candidate giving NaN (an inference error) has no usable answer: its canary sees a disagreement, not nothing
    (counted so, it is rolled back after give_up_after items instead of staying a candidate for ever)."""
    candidate = load_detector(make_package(nan_on_objects=True), overlap=32)
    high, low, _ = scatter(200, 200, 3, seed=1)
    scan = Scan(high, low)
    seen: list[bool] = []
    async with InferencePool() as pool, ShadowRunner(candidate, pool, on_compared=lambda agree, s, caught: seen.append(agree)) \
            as shadow:
        assert await shadow.compare("lane-1", scan, detector.detect(scan)) is None
    assert seen == [False] and shadow.stats()["scans"]["failed"] == 1


class Held:
    """A real detector whose tiles wait for `gate` (the test opens it): its shadow scan is surely under way when
    the live item comes."""

    def __init__(self, detector: Any, gate: threading.Event) -> None:
        self.detector, self.gate = detector, gate

    def __getattr__(self, name: str) -> Any:
        return getattr(self.detector, name)

    def run_tiles(self, *args: Any, **kw: Any) -> Any:
        self.gate.wait(30)
        return self.detector.run_tiles(*args, **kw)

    def detect(self, scan: Scan) -> Any:
        self.gate.wait(30)
        return self.detector.detect(scan)


async def test_a_live_item_waits_for_one_row_of_a_shadow_scan_not_for_the_whole_scan(detector):
    """A shadow comparison held the pool's worker for its whole scan: a live item arriving meanwhile waited for all
    of it (and missed its deadline: manual). Now the candidate runs one row of tiles per background job, and live
    jobs go first between rows."""
    gate = threading.Event()
    high, low, _ = scatter(1200, 300, 8, seed=3)
    big, (small_high, small_low, _) = Scan(high, low), scatter(200, 200, 3, seed=1)
    assert len(detector.tile_grid(big.shape)[0]) > 10
    async with InferencePool(workers=1) as pool, ShadowRunner(Held(detector, gate), pool) as shadow:
        comparison = asyncio.create_task(shadow.compare("lane-1", big, detector.detect(big)))
        await until(lambda: pool.stats()["running"] == 1, "the shadow scan under way", interval=0.005)
        live = asyncio.create_task(pool.detect("lane-1", detector, Scan(small_high, small_low)))
        await until(lambda: pool.stats()["queued"].get("lane-1") == 1, "the live item waits", interval=0.005)
        gate.set()
        await live
        assert not comparison.done()  # the live item went before the rest of the shadow scan
        result = await comparison
    assert result is not None and shadow.stats()["scans"]["compared"] == 1
    classes = shadow.stats()["classes"]  # the rows make the same detections as one detect
    assert classes and all(c["only_active"] == 0 == c["only_candidate"] and c["both"] for c in classes.values())


async def test_the_canary_is_told_whether_the_candidate_flagged_what_the_active_model_flagged(make_package, detector):
    """A candidate that finds nothing agrees on every clean item; its canary learns on each flagged item that it
    missed it (False), and on a clean one that there was nothing to catch (None)."""
    blind = load_detector(make_package(thresholds=(1.0, 1.0)), overlap=32)  # no score reaches 1.0
    flagged = Scan(*scatter(200, 200, 3, seed=1)[:2])
    clean = Scan(*case(200, 200))
    seen: list[tuple[bool, bool | None]] = []
    async with InferencePool() as pool, ShadowRunner(
            blind, pool, on_compared=lambda agree, s, caught: seen.append((agree, caught))) as shadow:
        for scan in (flagged, clean):
            assert detector.detect(scan) or scan is clean
            await shadow.compare("lane-1", scan, detector.detect(scan))
        async with ShadowRunner(detector, pool, on_compared=lambda agree, s, caught: seen.append((agree, caught))) \
                as sighted:
            await sighted.compare("lane-1", flagged, detector.detect(flagged))
    assert seen == [(False, False), (True, None), (True, True)]
