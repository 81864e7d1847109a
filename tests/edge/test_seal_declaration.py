"""Declarations that say sealed (issue 18): where the station's risk bundle carries a declaration for the item's
container or plate, its `sealed` / `seal_id` decide the seal check instead of the lane's `[seals]` setting; a
declared seal number other than the one read is seal_not_intact, said in words. The real detector judges a
real clean scan and the real store keeps the record."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from central_sync.schema import Identity, InspectionRecord, ItemKind, SealStatus, Verdict
from edge.detector import Engine
from edge.events import EventBus
from edge.inspection import Inspector, Item
from edge.metrics import StationMetrics
from edge.risk import BundleFiles, RiskCheck, RiskRuntime, load_keys
from edge.seals import SealExpectation, for_item
from edge.stations.acquisition import WholeScan
from edge.store import Store, StoreWriter
from edge.verdict import Reason
from models.pool import InferencePool
from models.runtime import load_detector
from models.scan import Scan
from models.testgraphs import case, write_package
from risk.bundle import Declaration, bundle_dict, encode_bundle
from risk_bundles import HUB_KEY, NO_RANDOM, pinned

SEALED = Declaration(ref="D-1", trader="Golden Bay", container="CSQU3054383", sealed=True, seal_id="HKEL 0001234")
UNSEALED = Declaration(ref="D-2", trader="Golden Bay", container="MSKU1234565", sealed=False)
LANE_SEALED = SealExpectation(True)  # the lane's [seals] declared_sealed = true, any seal


def box(number: str) -> Identity:
    return Identity(kind="container", value=number, source="ocr")


def seal(number: str) -> Identity:
    return Identity(kind="seal", value=number, source="seal-reader", seal=SealStatus(state="intact"))


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_package(tmp_path_factory.mktemp("pkg") / "model", "cpe-fcos-v1", 128)


@pytest.fixture
async def inspector(tmp_path: Path, package: Path) -> AsyncIterator[Inspector]:
    """A container lane whose [seals] says every item is sealed, with a bundle carrying the two declarations."""
    runtime = RiskRuntime("gate-1", load_keys(pinned(tmp_path)), BundleFiles(tmp_path / "risk"), "seed")
    now = time.time()
    doc = bundle_dict(version=1, issued_at=now - 60, expires_at=now + 3600, random=NO_RANDOM,
                      declarations=[SEALED, UNSEALED])
    assert runtime.receive(1, encode_bundle(doc, HUB_KEY, "risk-1")).outcome == "applied"

    async def actuate(*_: object) -> None:
        return None
    async with InferencePool(1, 4) as pool, StoreWriter(Store(tmp_path / "data", station="gate-1")) as store:
        yield Inspector("gate-1", "1", 5000, Engine(load_detector(package, overlap=32), pool), store, EventBus(),
                        StationMetrics(), actuate, seals=LANE_SEALED, risk=RiskCheck(runtime, "gate-1", "gantry"))


async def inspect(inspector: Inspector, *identities: Identity) -> InspectionRecord:
    high, low = case(256, 200)  # nothing in it: the detector alone would clear it
    item = Item(ref="c1", kind=ItemKind.CONTAINER, identities=list(identities))
    return await inspector.inspect(item, WholeScan(Scan(high, low, {"pixel_mm": 1.0})))


async def test_the_declared_seal_number_decides(inspector: Inspector) -> None:
    right = await inspect(inspector, box("CSQU 305438 3"), seal("HKEL0001234"))
    assert (right.verdict, right.reason) == (Verdict.CLEAR, Reason.CLEAR.value)
    wrong = await inspect(inspector, box("CSQU3054383"), seal("CNSL0009999"))
    assert (wrong.verdict, wrong.reason) == (Verdict.MANUAL, Reason.SEAL_NOT_INTACT.value)


async def test_a_declaration_without_a_seal_lifts_the_lane_setting_and_none_keeps_it(inspector: Inspector) -> None:
    unsealed = await inspect(inspector, box("MSKU1234565"))  # declared unsealed: no seal expected
    assert (unsealed.verdict, unsealed.reason) == (Verdict.CLEAR, Reason.CLEAR.value)
    undeclared = await inspect(inspector, box("TGHU0000001"))  # no declaration: the lane says sealed, none read
    assert (undeclared.verdict, undeclared.reason) == (Verdict.MANUAL, Reason.SEAL_NOT_INTACT.value)


def test_the_reason_in_words() -> None:
    expect = for_item(SEALED, LANE_SEALED)
    assert expect is not None
    assert expect.problem(ItemKind.CONTAINER, [seal("CNSL0009999")]) == \
        "seal HKEL0001234 declared by declaration D-1 differs from the seal read (CNSL0009999)"
    assert expect.problem(ItemKind.CONTAINER, []) == "declared seal HKEL0001234 by declaration D-1 was not read"
    assert expect.problem(ItemKind.CONTAINER, [seal("hkel-0001234")]) is None  # the same number written otherwise
    assert for_item(UNSEALED, LANE_SEALED) is None and for_item(None, LANE_SEALED) is LANE_SEALED
