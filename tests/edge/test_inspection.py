"""The inspection pipeline with a real ONNX model, the real pool and a real store.

What an operator relies on: a threat is suspect, an empty bag is clear, and every fault, late
answer or missing model ends in manual with its reason, never clear.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import numpy as np
import pytest

from central_sync.schema import ItemKind, Verdict
from drivers.errors import LinkLost
from edge.detector import Engine, load_engine
from edge.events import EventBus
from edge.inspection import Inspector, Item
from edge.metrics import StationMetrics
from edge.stations.acquisition import WholeScan
from edge.store import Store, StoreWriter
from edge.verdict import Reason
from models.errors import InferenceError
from models.pool import InferencePool
from models.runtime import load_detector
from models.scan import Scan
from models.testgraphs import case, paint_square, write_package
from polling import until


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return write_package(tmp_path_factory.mktemp("pkg") / "model", "cpe-fcos-v1", 128)


@pytest.fixture
async def rig(tmp_path, package):
    async with InferencePool(1, 4) as pool, StoreWriter(Store(tmp_path / "data", station="st-1")) as store:
        engine = Engine(load_detector(package, overlap=32), pool)
        events = EventBus()
        yield _Rig(engine, store, events, pool, package)


class _Rig:
    def __init__(self, engine, store, events, pool, package):
        self.engine, self.store, self.events, self.pool, self.package = engine, store, events, pool, package
        self.actuated: list[tuple[Verdict, Reason]] = []
        self.actuation_problem: Reason | None = None

    def inspector(self, budget_ms: float = 5000, engine=...) -> Inspector:
        async def actuate(item, verdict, reason):
            self.actuated.append((verdict, reason))
            return self.actuation_problem
        return Inspector("st-1", "1", budget_ms, self.engine if engine is ... else engine, self.store,
                         self.events, StationMetrics(), actuate)


def bag(threat: bool) -> Scan:
    high, low = case(256, 200)
    if threat:
        paint_square(high, low, 100, 60, "metal")
    return Scan(high, low, {"pixel_mm": 1.0})


class Blocks:
    """A line scan delivered in blocks, optionally failing after some of them."""

    def __init__(self, scan: Scan, block: int = 64, fail_after: int | None = None, complete: bool = True):
        self.scan, self.block, self.fail_after, self.complete = scan, block, fail_after, complete
        self.sent = 0

    async def blocks(self):
        for i, y in enumerate(range(0, self.scan.shape[0], self.block)):
            if self.fail_after is not None and i >= self.fail_after:
                raise LinkLost("X-ray controller st-1/scanner stopped answering", device="st-1/scanner")
            self.sent = y + self.block
            yield self.scan.high[y:y + self.block], self.scan.low[y:y + self.block]
            await asyncio.sleep(0)

    def result(self) -> Scan:
        h = min(self.sent, self.scan.shape[0])
        return Scan(self.scan.high[:h], self.scan.low[:h], self.scan.meta, complete=self.complete)


async def test_threat_is_suspect_and_recorded_with_its_detection(rig):
    with rig.events.subscribe() as sub:
        record = await rig.inspector().inspect(Item("bag-1", ItemKind.BAGGAGE), WholeScan(bag(True)))
        event = await asyncio.wait_for(sub.get(), 1)
    assert (record.verdict, record.reason) == (Verdict.SUSPECT, "detection")
    assert record.detections[0].label == "metal"
    assert record.seq == 1 and record.model.sha256
    assert event.topic == "inspection" and event.data["id"] == record.id
    stored = await rig.store.call(rig.store.store.get, record.id)
    assert stored == record
    assert rig.store.store.scan_path(record.scan.sha256).exists()
    assert set(record.latencies_ms) >= {"acquire", "detect", "decide", "actuate"}


async def test_empty_bag_is_clear(rig):
    record = await rig.inspector().inspect(Item("bag-2", ItemKind.BAGGAGE), WholeScan(bag(False)))
    assert (record.verdict, record.reason) == (Verdict.CLEAR, "clear")


async def test_streamed_line_scan_finds_the_threat(rig):
    record = await rig.inspector().inspect(Item("bag-3", ItemKind.BAGGAGE), Blocks(bag(True)))
    assert record.verdict is Verdict.SUSPECT


async def test_budget_too_small_is_manual_never_clear(rig):
    record = await rig.inspector(budget_ms=0.001).inspect(Item("bag-4", ItemKind.BAGGAGE), WholeScan(bag(False)))
    assert record.verdict is Verdict.MANUAL
    assert record.reason in (Reason.DEADLINE_UNREACHABLE, Reason.BUDGET_MISSED)


async def test_device_fault_mid_scan_is_manual_and_keeps_the_partial_scan(rig):
    record = await rig.inspector().inspect(Item("bag-5", ItemKind.BAGGAGE), Blocks(bag(True), fail_after=2))
    assert (record.verdict, record.reason) == (Verdict.MANUAL, "device_fault")
    assert record.scan is not None and record.scan.shape[0] == 128


async def test_scanner_that_never_opened_sends_each_item_to_manual_without_stopping_the_flow(rig):
    from edge.devices import Devices
    from edge.stations.acquisition import start_line_scan

    devices = Devices()  # the scanner could not be opened at start: devices.scanner is None
    devices.mark("scanner", "lost", "serial port /dev/ttyUSB0 is missing")
    for ref in ("bag-7", "bag-8"):
        acquisition = await start_line_scan(devices, ref)
        record = await rig.inspector().inspect(Item(ref, ItemKind.BAGGAGE), acquisition)
        assert (record.verdict, record.reason) == (Verdict.MANUAL, "device_fault")
    assert "/dev/ttyUSB0 is missing" in acquisition.message and "bag-8" in acquisition.message


async def test_incomplete_scan_is_manual(rig):
    record = await rig.inspector().inspect(Item("bag-6", ItemKind.BAGGAGE), Blocks(bag(False), complete=False))
    assert (record.verdict, record.reason) == (Verdict.MANUAL, "scan_incomplete")


async def test_no_model_is_manual(rig):
    no_model = Engine(None, rig.pool, "model.onnx is missing")
    record = await rig.inspector(engine=no_model).inspect(Item("bag-7", ItemKind.BAGGAGE), WholeScan(bag(False)))
    assert (record.verdict, record.reason) == (Verdict.MANUAL, "model_unavailable")


async def test_unconfirmed_actuation_turns_clear_into_manual(rig):
    rig.actuation_problem = Reason.DEVICE_FAULT
    record = await rig.inspector().inspect(Item("bag-8", ItemKind.BAGGAGE), WholeScan(bag(False)))
    assert rig.actuated == [(Verdict.CLEAR, Reason.CLEAR)]
    assert (record.verdict, record.reason) == (Verdict.MANUAL, "device_fault")


async def test_tampered_model_leaves_station_in_manual_with_an_alarm(rig, tmp_path):
    import shutil
    bad = tmp_path / "tampered"
    shutil.copytree(rig.package, bad)
    data = bytearray((bad / "model.onnx").read_bytes())
    data[-10] ^= 0xFF
    (bad / "model.onnx").write_bytes(bytes(data))
    section = SimpleNamespace(dir=bad, threads=1, providers=("CPUExecutionProvider",), thresholds={},
                              max_tile_px=2048)
    engine = await load_engine(section, "st-1", rig.store, rig.pool)
    assert engine.model is None and "sha256" in engine.problem
    alarms = await rig.store.call(rig.store.store.standing_alarms)
    assert alarms[0][0] == "model_unavailable"
    record = await rig.inspector(engine=engine).inspect(Item("bag-9", ItemKind.BAGGAGE), WholeScan(bag(True)))
    assert record.verdict is Verdict.MANUAL


async def test_shadow_model_is_compared_without_touching_the_verdict(rig):
    from models.shadow import ShadowRunner

    async with ShadowRunner(load_detector(rig.package, overlap=32), rig.pool) as shadow:
        inspector = rig.inspector()
        inspector.shadow = shadow
        record = await inspector.inspect(Item("bag-s", ItemKind.BAGGAGE), WholeScan(bag(True)))
        await until(lambda: shadow.stats()["scans"]["compared"], "the shadow model compared the scan")
    stats = shadow.stats()
    assert record.verdict is Verdict.SUSPECT
    assert stats["scans"]["compared"] == 1 and stats["scans"]["verdict_agree"] == 1
    assert stats["classes"]["metal"]["both"] == 1
    metrics = StationMetrics()
    metrics.follow_shadow(shadow.stats)  # what the station's /metrics serves
    page = metrics.render().decode()
    name, version = stats["candidate"]["name"], stats["candidate"]["version"]
    assert f'edge_shadow_scans_total{{model="{name}",outcome="compared",version="{version}"}} 1.0' in page
    assert f'edge_shadow_detections_total{{class="metal",found_by="both",model="{name}",version="{version}"}} 1.0' in page


class WatchedBlocks(Blocks):
    """Blocks that note when the reader closed them (a line scan stops the controller's scan there)."""

    closed = False

    async def blocks(self):
        try:
            async for block in super().blocks():
                yield block
        finally:
            self.closed = True


async def test_an_inspection_that_stops_reading_closes_the_scan_before_it_returns(rig):
    """Inference fails on the second block: the pipeline stops reading and the scan is closed at once,
    not when the abandoned generator is collected later, so the controller's scan is stopped before
    the next item starts."""
    class FailingStream:
        fed = 0

        async def feed(self, high, low):
            self.fed += 1
            if self.fed == 2:
                raise InferenceError("onnxruntime failed on strip 2 of st-1")

        async def finish(self, scan, deadline):
            return []

        async def aclose(self):
            return None

    engine = SimpleNamespace(model=rig.engine.model, classes=(), open_stream=lambda station, item_kind: FailingStream())
    acquisition = WatchedBlocks(bag(False))
    closed_when_decided: list[bool] = []

    async def actuate(item, verdict, reason):
        closed_when_decided.append(acquisition.closed)

    inspector = Inspector("st-1", "1", 5000, engine, rig.store, rig.events, StationMetrics(), actuate)
    record = await inspector.inspect(Item("bag-9", ItemKind.BAGGAGE), acquisition)
    assert (record.verdict, record.reason) == (Verdict.MANUAL, "inference_failed")
    assert closed_when_decided == [True] and acquisition.sent < bag(False).shape[0]


class OutOfMemoryBlocks(Blocks):
    """A scan source that cannot hold the scan any more after two blocks (a scanner that never ends its scan)."""

    async def blocks(self):
        async for i, block in _enumerate(super().blocks()):
            if i == 2:
                raise MemoryError("Unable to allocate 2.1 GiB for an array with shape (1100000, 1024)")
            yield block


async def _enumerate(blocks):
    i = 0
    async for block in blocks:
        yield i, block
        i += 1


@pytest.mark.parametrize("acquisition, reason", [
    (lambda: Blocks(bag(False), complete=False), "scan_incomplete"),
    (lambda: Blocks(bag(False), fail_after=3), "device_fault"),
    (lambda: OutOfMemoryBlocks(bag(False)), "device_fault"),
], ids=["incomplete", "device_fault", "out_of_memory"])
async def test_an_abandoned_scan_leaves_none_of_its_strips_queued_for_the_next_item(rig, acquisition, reason):
    """The pool's one worker is busy elsewhere, so the scan's strips are still queued when it is abandoned:
    they are cancelled before the record is returned, not left to run ahead of the next item's."""
    import threading

    release = threading.Event()
    busy = asyncio.create_task(rig.pool.run("st-2", lambda: release.wait(30)))
    await until(lambda: rig.pool.stats()["running"] == 1, "the other station's job holds the worker")
    try:
        record = await rig.inspector().inspect(Item("bag-10", ItemKind.BAGGAGE), acquisition())
        queued = rig.pool.stats()["queued"].get("st-1", 0)
    finally:
        release.set()
        await busy
    assert (record.verdict, record.reason) == (Verdict.MANUAL, reason)
    assert queued == 0 and rig.pool.stats()["stations"]["st-1"]["cancelled"] >= 1
    record = await rig.inspector().inspect(Item("bag-11", ItemKind.BAGGAGE), WholeScan(bag(False)))
    assert (record.verdict, record.reason) == (Verdict.CLEAR, "clear")


class _DefectiveBlocks(Blocks):
    """A driver with a defect: its blocks raise what no driver error is (a ValueError from a frame it misparsed)."""

    async def blocks(self):
        yield self.scan.high[:64], self.scan.low[:64]
        raise ValueError("cannot reshape array of size 100 into shape (64,200)")


async def test_a_defect_in_the_scan_or_the_model_gives_a_manual_record_never_none(rig, monkeypatch):
    """An exception that is no driver or model error (a driver's defect, a model output shape its decoder did not
    expect: IndexError) left Inspector.inspect: the item had no record at all (a gantry vehicle waited in the lane
    with nothing on the screen). Now the item is recorded `manual`, the defect logged with its traceback."""
    record = await rig.inspector().inspect(Item("bag-d1", ItemKind.BAGGAGE), _DefectiveBlocks(bag(False)))
    assert (record.verdict, record.reason) == (Verdict.MANUAL, "device_fault")

    def broken(*args, **kwargs):
        raise IndexError("index 5 is out of bounds for axis 1 with size 5")
    monkeypatch.setattr(rig.engine.detector, "run_tiles", broken)
    record = await rig.inspector().inspect(Item("bag-d2", ItemKind.BAGGAGE), WholeScan(bag(False)))
    assert (record.verdict, record.reason) == (Verdict.MANUAL, "inference_failed")
    assert await rig.store.call(rig.store.store.get, record.id) == record
