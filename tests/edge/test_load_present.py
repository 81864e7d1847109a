"""A container declared empty that the detector sees loaded: the risk fact detector.load_present comes from the
model that judged the scan, and only from a model made to see a load."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from central_sync.schema import ContainerPass, Identity, InspectionRecord, ItemKind, Verdict
from edge.detector import Engine
from edge.events import EventBus
from edge.inspection import Inspector, Item
from edge.metrics import StationMetrics
from edge.risk import BundleFiles, RiskCheck, RiskRuntime, load_keys
from edge.stations.acquisition import WholeScan
from edge.store import Store, StoreWriter
from edge.verdict import Reason
from models.pool import InferencePool
from models.runtime import load_detector
from models.scan import Scan
from models.testgraphs import case, paint_square, write_package
from risk.bundle import Declaration, bundle_dict, encode_bundle
from risk.engine import DECLARED_EMPTY_NOT_EMPTY
from risk_bundles import HUB_KEY, NO_RANDOM, pinned

EMPTY = Declaration(ref="D-9", trader="Golden Bay", container="CSQU3054383", declared_empty=True)
BOX = Identity(kind="container", value="CSQU3054383", source="ocr")


async def inspector(tmp_path: Path, classes: tuple[str, str]) -> AsyncIterator[Inspector]:
    package = write_package(tmp_path / "model", "cpe-fcos-v1", 128, classes=classes)
    runtime = RiskRuntime("gate-1", load_keys(pinned(tmp_path)), BundleFiles(tmp_path / "risk"), "seed")
    now = time.time()
    doc = bundle_dict(version=1, issued_at=now - 60, expires_at=now + 3600, random=NO_RANDOM, declarations=[EMPTY])
    assert runtime.receive(1, encode_bundle(doc, HUB_KEY, "risk-1")).outcome == "applied"

    async def actuate(*_: object) -> None:
        return None
    async with InferencePool(1, 4) as pool, StoreWriter(Store(tmp_path / "data", station="gate-1")) as store:
        yield Inspector("gate-1", "1", 5000, Engine(load_detector(package, overlap=32), pool), store, EventBus(),
                        StationMetrics(), actuate, risk=RiskCheck(runtime, "gate-1", "gantry"))


@pytest.fixture
async def load_model(tmp_path: Path) -> AsyncIterator[Inspector]:
    async for i in inspector(tmp_path, ("load_present", "organic")):
        yield i


@pytest.fixture
async def threat_model(tmp_path: Path) -> AsyncIterator[Inspector]:
    async for i in inspector(tmp_path, ("metal", "organic")):
        yield i


async def inspect(inspector: Inspector, loaded: bool) -> InspectionRecord:
    high, low = case(256, 200)
    if loaded:
        paint_square(high, low, 100, 60, "metal")
    item = Item(ref="c1", kind=ItemKind.CONTAINER, identities=[BOX])
    return await inspector.inspect(item, WholeScan(Scan(high, low, {"pixel_mm": 1.0})))


def fired(record: InspectionRecord) -> list[str]:
    assert record.risk is not None
    return [f.id for f in record.risk.rules]


async def test_a_load_in_a_container_declared_empty_is_a_red_lane(load_model: Inspector) -> None:
    loaded = await inspect(load_model, True)
    assert [d.label for d in loaded.detections] == ["load_present"]
    assert (loaded.verdict, loaded.reason) == (Verdict.MANUAL, Reason.RISK_RED)
    assert DECLARED_EMPTY_NOT_EMPTY in fired(loaded)
    empty = await inspect(load_model, False)
    assert DECLARED_EMPTY_NOT_EMPTY not in fired(empty)
    # the record keeps what the declaration said (the hub's same-type-empty references read it)
    assert loaded.container == empty.container == ContainerPass(declared_empty=True, declaration="D-9")


async def test_a_model_without_a_load_class_says_nothing_of_the_load(threat_model: Inspector) -> None:
    record = await inspect(threat_model, True)
    assert [d.label for d in record.detections] == ["metal"]
    assert DECLARED_EMPTY_NOT_EMPTY not in fired(record)
