"""A bag the detector would clear but whose beam did not get through part of it is not cleared: nothing behind that
part was judged (models.dense, edge.verdict Reason.DENSE_OBJECT). Vehicles are not held for their engine blocks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from central_sync.schema import InspectionRecord, ItemKind, Verdict
from edge.config import ModelSection
from edge.detector import Engine
from edge.events import EventBus
from edge.inspection import Inspector, Item
from edge.metrics import StationMetrics
from edge.stations.acquisition import WholeScan
from edge.store import Store, StoreWriter
from edge.verdict import Reason
from models.dense import dense_problem
from models.pool import InferencePool
from models.runtime import load_detector
from models.scan import Scan
from models.testgraphs import case, write_package

LEAD = 300  # transmission counts of 65535: −ln T = 5.4, beyond what the beam gets through (4.6)


def bag(block_px: int) -> Scan:
    """An empty case with a lead-lined box of block_px × block_px (1 mm pixels) in it; none when 0."""
    high, low = case(256, 200)
    high[60:60 + block_px, 40:40 + block_px] = LEAD
    low[60:60 + block_px, 40:40 + block_px] = LEAD // 3
    return Scan(high, low, {"pixel_mm": 1.0})


@pytest.fixture
async def inspectors(tmp_path: Path) -> AsyncIterator[dict[float, Inspector]]:
    package = write_package(tmp_path / "model", "cpe-fcos-v1", 128)

    async def actuate(*_: object) -> None:
        return None
    async with InferencePool(1, 4) as pool, StoreWriter(Store(tmp_path / "data", station="b1")) as store:
        engine = Engine(load_detector(package, overlap=32), pool)
        yield {mm2: Inspector("b1", "1", 5000, engine, store, EventBus(), StationMetrics(), actuate,
                              dense_alert_mm2=mm2) for mm2 in (ModelSection().dense_alert_mm2, 0.0)}


async def inspect(inspector: Inspector, scan: Scan, kind: ItemKind = ItemKind.BAGGAGE) -> InspectionRecord:
    return await inspector.inspect(Item(ref="i1", kind=kind), WholeScan(scan))


async def test_a_bag_with_a_box_the_beam_cannot_penetrate_goes_to_the_officer(inspectors) -> None:
    default = inspectors[100.0]
    lined = await inspect(default, bag(20))  # 324 mm² once smoothed
    assert (lined.detections, lined.verdict, lined.reason) == ([], Verdict.MANUAL, Reason.DENSE_OBJECT)
    assert (await inspect(default, bag(0))).verdict == Verdict.CLEAR
    assert (await inspect(default, bag(8))).verdict == Verdict.CLEAR  # 64 mm²: a buckle, a coin
    parcel = await inspect(default, bag(20), ItemKind.PARCEL)
    assert parcel.reason == Reason.DENSE_OBJECT


async def test_vehicles_and_a_station_that_turns_the_rule_off_are_not_held(inspectors) -> None:
    assert (await inspect(inspectors[100.0], bag(20), ItemKind.VEHICLE)).verdict == Verdict.CLEAR
    assert (await inspect(inspectors[0.0], bag(20))).verdict == Verdict.CLEAR


def test_the_problem_names_the_largest_region_with_its_size_and_place() -> None:
    problem = dense_problem(bag(20), 100.0)
    # the 3 × 3 smoothing against detector noise takes the box's one-pixel border: 18 × 18 of its 20 × 20
    assert problem is not None and "1 region(s)" in problem and "324 mm²" in problem and "[41, 61, 59, 79]" in problem
    pitch = Scan(bag(20).high, bag(20).low, {"pixel_mm": 0.4})  # 324 px of 0.16 mm² = 52 mm²: under the alert
    assert dense_problem(pitch, 100.0) is None
    assert np.array_equal(bag(0).high, case(256, 200)[0])


def zero_band(lines: int, level: int = 0) -> Scan:
    """An empty case whose lines 100 .. 100 + lines read `level` in every pixel of both energies."""
    high, low = case(256, 200)
    high[100:100 + lines], low[100:100 + lines] = level, level
    return Scan(high, low, {"pixel_mm": 1.0})


async def test_a_band_of_lines_reading_exactly_zero_is_a_device_fault_never_a_clear(inspectors) -> None:
    """20 lines reading exactly 0 in every pixel of both energies (a dead detector board, a link delivering empty
    lines) were taken for an opaque load: `dense_object` by default, and `clear` where the station turned the dense
    rule off. No load reads so: an opaque one leaves the air beside it lit. The bag goes to manual as a device fault
    with one sentence naming the lines, counted; an opaque load across the whole tunnel still reads dense."""
    default, off = inspectors[100.0], inspectors[0.0]
    for inspector in (off, default):
        record = await inspect(inspector, zero_band(20))
        assert (record.verdict, record.reason) == (Verdict.MANUAL, Reason.DEVICE_FAULT)
    assert default.metrics.bad_input.labels("xray_zero_lines")._value.get() == 1
    from models.dense import zero_band_problem

    assert zero_band_problem(zero_band(20)) == (
        "lines 100 to 119 (20 lines) of the scan read exactly 0 in every pixel of both energies: a detector or link "
        "fault, not a load (an opaque load leaves the air beside it lit)")
    opaque = await inspect(default, zero_band(20, level=LEAD))  # at the detector floor, not exactly 0: a load
    assert (opaque.verdict, opaque.reason) == (Verdict.MANUAL, Reason.DENSE_OBJECT)
    short = await inspect(default, zero_band(3))  # under ZERO_BAND_LINES: taken as dense, still not cleared
    assert (short.verdict, short.reason) == (Verdict.MANUAL, Reason.DENSE_OBJECT)
    # a portal switches its beam off over the cab on purpose: a vehicle's dark lines are no fault
    assert (await inspect(default, zero_band(20), ItemKind.VEHICLE)).reason != Reason.DEVICE_FAULT
