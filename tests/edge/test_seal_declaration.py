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
from edge.seals import SealExpectation, for_item, strictest
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


async def inspect(inspector: Inspector, *identities: Identity, kind: ItemKind = ItemKind.CONTAINER) -> InspectionRecord:
    high, low = case(256, 200)  # nothing in it: the detector alone would clear it
    item = Item(ref="c1", kind=kind, identities=list(identities))
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
    assert for_item(None, LANE_SEALED) is LANE_SEALED and for_item(UNSEALED, None) is None
    lifted = for_item(UNSEALED, LANE_SEALED)
    assert lifted is not None and not lifted.required


async def test_a_container_declared_unsealed_keeps_the_lanes_seal_check(inspector: Inspector) -> None:
    """A declaration with `sealed = false` took the lane's check away: on a lane whose [seals] says sealed, a seal read
    as tampered on that container was cleared (a risk bundle made the verdict less strict than the lane's own
    check). It still requires no seal (the test above), but a seal read must be intact."""
    tampered = Identity(kind="seal", value="CNSL0009999", source="seal-reader", seal=SealStatus(state="tampered"))
    record = await inspect(inspector, box("MSKU1234565"), tampered)
    assert (record.verdict, record.reason) == (Verdict.MANUAL, Reason.SEAL_NOT_INTACT.value)
    intact = await inspect(inspector, box("MSKU1234565"), seal("CNSL0009999"))
    assert (intact.verdict, intact.reason) == (Verdict.CLEAR, Reason.CLEAR.value)
    # beside a container declared sealed with its seal's number, the other container's tampered seal still counts
    both = await inspect(inspector, box("CSQU3054383"), box("MSKU1234565"), seal("HKEL0001234"), tampered,
                         kind=ItemKind.VEHICLE)
    assert (both.verdict, both.reason) == (Verdict.MANUAL, Reason.SEAL_NOT_INTACT.value)


async def test_every_containers_declaration_counts_and_the_strictest_wins(inspector: Inspector) -> None:
    """A vehicle carrying a container declared unsealed and one declared sealed: the sealed one's seal is checked,
    whichever code was read first (only the first one's declaration counted: MSKU first and no seal was clear)."""
    for first, second in ((box("MSKU1234565"), box("CSQU3054383")), (box("CSQU3054383"), box("MSKU1234565"))):
        unsealed = await inspect(inspector, first, second, kind=ItemKind.VEHICLE)
        assert (unsealed.verdict, unsealed.reason) == (Verdict.MANUAL, Reason.SEAL_NOT_INTACT.value)
        sealed = await inspect(inspector, first, second, seal("HKEL0001234"), kind=ItemKind.VEHICLE)
        assert (sealed.verdict, sealed.reason) == (Verdict.CLEAR, Reason.CLEAR.value)


def camera(status: str, raw: str = "") -> Identity:
    return Identity(kind="container", value="", source="cam-left", status=status, raw=raw)  # type: ignore[arg-type]


@pytest.mark.parametrize("read, kind", [
    ((box("CSQU3054384"),), ItemKind.CONTAINER),  # the last digit misread: it fails its check, no declaration found
    ((box("CSQU3054384"),), ItemKind.VEHICLE),
    ((camera("check_failed", "CSQU3054384"),), ItemKind.VEHICLE),
    ((camera("low_confidence", "CSQU3054383"),), ItemKind.VEHICLE),
    ((camera("unread"),), ItemKind.CONTAINER),  # a container item whose code no camera saw
    ((box("MSKU1234565"), camera("check_failed", "CSQU3054384")), ItemKind.VEHICLE),  # a second box misread
], ids=["bad_check_digit", "vehicle_bad_check_digit", "check_failed", "low_confidence", "unread", "second_box"])
async def test_a_container_whose_declaration_cannot_be_found_is_manual(inspector: Inspector, read: tuple[Identity, ...],
                                                                      kind: ItemKind) -> None:
    """Where declarations are in use, a container code not read or failing its check may hide a declaration
    saying sealed: the item is manual with its own reason (a seal is read, so the lane's setting is met)."""
    record = await inspect(inspector, *read, seal("HKEL0001234"), kind=kind)
    assert (record.verdict, record.reason) == (Verdict.MANUAL, Reason.CONTAINER_UNIDENTIFIED.value)


async def test_a_vehicle_whose_camera_saw_no_container_code_is_not_held_for_it(inspector: Inspector) -> None:
    """A vehicle may carry no container: its container camera's `unread` alone is no reason; nor is an unread
    camera on a container item whose code another camera read."""
    van = await inspect(inspector, camera("unread"), seal("HKEL0001234"), kind=ItemKind.VEHICLE)
    assert (van.verdict, van.reason) == (Verdict.CLEAR, Reason.CLEAR.value)
    box_read = await inspect(inspector, camera("unread"), box("CSQU3054383"), seal("HKEL0001234"))
    assert (box_read.verdict, box_read.reason) == (Verdict.CLEAR, Reason.CLEAR.value)


def test_the_strictest_expectation_names_every_declared_seal() -> None:
    other = Declaration(ref="D-3", trader="Golden Bay", container="TGHU0000001", sealed=True, seal_id="CNSL0009999")
    expect = strictest([for_item(d, LANE_SEALED) for d in (UNSEALED, SEALED, other)])
    assert expect is not None
    assert expect.problem(ItemKind.VEHICLE, [seal("HKEL0001234")]) == \
        "seal CNSL0009999 declared by declaration D-1 and declaration D-3 differs from the seal read (HKEL0001234)"
    assert expect.problem(ItemKind.VEHICLE, [seal("HKEL0001234"), seal("CNSL0009999")]) is None
    assert strictest([for_item(UNSEALED, LANE_SEALED), None]) == for_item(UNSEALED, LANE_SEALED)
    assert strictest([for_item(UNSEALED, None), None]) is None


async def test_a_container_item_whose_code_no_camera_read_is_not_green_for_risk(inspector: Inspector) -> None:
    """A container's code covered (every camera `unread`): the container's watchlists cannot be checked, so the risk
    check is amber (identity_unread) as for a code seen and not read; on a vehicle it is nothing (no container)."""
    item = Item(ref="c1", kind=ItemKind.CONTAINER, identities=[camera("unread")])
    assert inspector.risk is not None
    covered = inspector.risk.assess(item.id, item.identities, container_item=True)
    assert covered.lane == "amber" and "identity_unread" in {f.id for f in covered.fired}
    van = inspector.risk.assess(item.id, [camera("unread"), Identity(kind="plate", value="AB1234", source="cam")])
    assert "identity_unread" not in {f.id for f in van.fired}
    read = inspector.risk.assess(item.id, [camera("unread"), box("CSQU3054383")], container_item=True)
    assert "identity_unread" not in {f.id for f in read.fired}
