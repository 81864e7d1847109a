"""Risk in the inspection: the real detector judges a real scan, the station's bundle makes the verdict
only stricter, and the record keeps the lane, the reasons, the draw and the bundle version."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from central_sync.schema import Identity, InspectionRecord, ItemKind, Verdict
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
from risk.bundle import Declaration, RandomPolicy, WatchEntry, bundle_dict, encode_bundle
from risk.rules import Rule
from risk_bundles import HUB_KEY, NO_RANDOM, envelope, pinned

PLATE = Identity(kind="plate", value="AB-123-CD", source="anpr")


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_package(tmp_path_factory.mktemp("pkg") / "model", "cpe-fcos-v1", 128)


class Lane:
    """One station lane: the real model and pool, a real store, the risk runtime and what was actuated."""

    def __init__(self, engine: Engine, store: StoreWriter, runtime: RiskRuntime) -> None:
        self.engine, self.store, self.runtime, self.events = engine, store, runtime, EventBus()
        self.metrics = StationMetrics()
        self.actuated: list[tuple[Verdict, Reason]] = []

    def inspector(self) -> Inspector:
        async def actuate(item: Item, verdict: Verdict, reason: Reason) -> None:
            self.actuated.append((verdict, reason))
        return Inspector("gate-1", "1", 5000, self.engine, self.store, self.events, self.metrics, actuate,
                         risk=RiskCheck(self.runtime, "gate-1", "gantry"))

    async def inspect(self, threat: bool, *identities: Identity) -> InspectionRecord:
        high, low = case(256, 200)
        if threat:
            paint_square(high, low, 100, 60, "metal")
        item = Item(ref="v1", kind=ItemKind.VEHICLE, identities=list(identities))
        return await self.inspector().inspect(item, WholeScan(Scan(high, low, {"pixel_mm": 1.0})))


@pytest.fixture
async def lane(tmp_path: Path, package: Path) -> AsyncIterator[Lane]:
    cfg = pinned(tmp_path)
    runtime = RiskRuntime("gate-1", load_keys(cfg), BundleFiles(tmp_path / "risk"), "seed-gate-1")
    async with InferencePool(1, 4) as pool, StoreWriter(Store(tmp_path / "data", station="gate-1")) as store:
        yield Lane(Engine(load_detector(package, overlap=32), pool), store, runtime)


async def test_without_a_bundle_a_detector_clear_goes_to_the_officer(lane: Lane) -> None:
    record = await lane.inspect(False, PLATE)
    assert record.risk is not None and record.risk.bundle is None
    # without a bundle the random draw runs at the stale rate: an item it selects (lane red) is a search
    expected = Reason.RISK_RED if record.risk.random and record.risk.random.selected else Reason.RISK_AMBER
    assert (record.verdict, record.reason) == (Verdict.MANUAL, expected)
    assert lane.actuated == [(Verdict.MANUAL, expected)]  # acted on, not only written
    assert "no_bundle" in [f.kind for f in record.risk.rules] and record.risk.lane in ("amber", "red")
    stored = lane.store.store.get(record.id)
    assert stored is not None and stored.risk == record.risk


async def test_a_red_watchlist_hit_is_physical_inspection_whatever_the_detector_says(lane: Lane) -> None:
    assert lane.runtime.receive(1, envelope(1)).outcome == "applied"
    with lane.events.subscribe() as sub:
        clear_bag = await lane.inspect(False, PLATE)
        early = await sub.get()
    assert early.topic == "risk" and early.data["lane"] == "red" and early.data["bundle"] == 1  # before the verdict
    threat = await lane.inspect(True, PLATE)
    assert (clear_bag.verdict, clear_bag.reason) == (Verdict.MANUAL, Reason.RISK_RED)
    assert (threat.verdict, threat.reason) == (Verdict.MANUAL, Reason.RISK_RED)
    assert clear_bag.risk is not None and clear_bag.risk.bundle == 1 and clear_bag.risk.lane == "red"
    assert [(f.kind, f.reason) for f in clear_bag.risk.rules] == [("watchlist", "reported stolen")]


class PlateReadMidScan:
    """A line scan in two halves; the plate camera's read arrives between them, as on a gantry."""

    def __init__(self, item: Item, lane: Lane) -> None:
        high, low = case(256, 200)
        self.scan, self.item, self.lane = Scan(high, low, {"pixel_mm": 1.0}), item, lane
        self.seen_mid_scan: list[str] = []

    async def blocks(self) -> AsyncGenerator[tuple[np.ndarray, np.ndarray], None]:
        yield self.scan.high[:128], self.scan.low[:128]
        with self.lane.events.subscribe() as sub:
            self.item.identities.append(PLATE)
            self.item.identified()
            while not sub.queue.empty():
                event = sub.queue.get_nowait()
                self.seen_mid_scan.append(f"{event.topic}:{event.data.get('lane')}")
        yield self.scan.high[128:], self.scan.low[128:]

    def result(self) -> Scan:
        return self.scan


async def test_a_plate_read_during_the_scan_is_assessed_before_the_scan_ends(lane: Lane) -> None:
    lane.runtime.receive(1, envelope(1))
    item = Item(ref="v2", kind=ItemKind.VEHICLE)
    acquisition = PlateReadMidScan(item, lane)
    record = await lane.inspector().inspect(item, acquisition)
    assert acquisition.seen_mid_scan == ["risk:red"]
    assert (record.verdict, record.reason) == (Verdict.MANUAL, Reason.RISK_RED)
    item.identified()  # a read after the verdict assesses nothing more


async def test_a_green_assessment_leaves_the_detectors_verdict(lane: Lane) -> None:
    lane.runtime.receive(1, envelope(1))
    other = Identity(kind="plate", value="XY 1", source="anpr")
    clear_bag, threat = await lane.inspect(False, other), await lane.inspect(True, other)
    assert (clear_bag.verdict, clear_bag.reason) == (Verdict.CLEAR, Reason.CLEAR)
    assert (threat.verdict, threat.reason) == (Verdict.SUSPECT, Reason.DETECTION)  # never made clear
    assert clear_bag.risk is not None and clear_bag.risk.lane == "green" and clear_bag.risk.random is not None
    assert clear_bag.risk.random.seed == "seed-gate-1" and not clear_bag.risk.random.selected
    assert lane.metrics.registry.get_sample_value("edge_risk_lanes_total", {"lane": "green", "bundle": "current"}) == 2
    lane.metrics.follow_risk(lambda: dict(lane.runtime.counters), lane.runtime.status)
    assert lane.metrics.registry.get_sample_value("edge_risk_bundles_total", {"outcome": "applied"}) == 1
    assert lane.metrics.registry.get_sample_value("edge_risk_bundle_version") == 1


@pytest.mark.parametrize("reads", [
    [Identity(kind="plate", value="", source="anpr", status="low_confidence", raw="AB-1Z3-CD")],  # the listed plate
    [Identity(kind="plate", value="", source="anpr", status="unread")],
    [Identity(kind="plate", value="XY 1", source="anpr"), Identity(kind="container", value="", source="box",
                                                                   status="check_failed", raw="CSQU3054384")],
    [],
    [Identity(kind="badge", value="officer-7", source="desk")],  # the officer's badge is not the vehicle's
])
async def test_a_vehicle_whose_identity_was_not_read_goes_to_the_officer(lane: Lane, reads: list[Identity]) -> None:
    """An obscured listed plate (read low_confidence: value empty) was green under a working bundle, less strict
    than no bundle at all (amber): its watchlists were never checked."""
    lane.runtime.receive(1, envelope(1))
    record = await lane.inspect(False, *reads)
    assert (record.verdict, record.reason) == (Verdict.MANUAL, Reason.RISK_AMBER)
    assert record.risk is not None and ("rule", "identity_unread", "amber") in [
        (f.kind, f.reason, f.lane) for f in record.risk.rules]


async def test_a_vehicle_whose_reads_conflict_goes_to_the_officer(lane: Lane) -> None:
    """A cloned tag (two EPCs from one TID) or two plates of one jurisdiction were flagged on the record, but a clear
    scan with a green lane was cleared all the same: a clean watchlist check of one of the reads said nothing of the
    vehicle. Now the conflict fires `identity_conflict`, lane amber."""
    lane.runtime.receive(1, envelope(1))
    tid = "E2801160200073F1A2B3C4D5"
    reads = [Identity(kind="plate", value="XY 1", source="anpr"),
             *(Identity(kind="rfid_epc", value=epc, source="uhf", checks={"tid": tid})
               for epc in ("300833B2DDD9014000000001", "300833B2DDD9014000000002"))]
    record = await lane.inspect(False, *reads)
    assert (record.verdict, record.reason) == (Verdict.MANUAL, Reason.RISK_AMBER)
    assert record.risk is not None and ("rule", "identity_conflict", "amber") in [
        (f.kind, f.reason, f.lane) for f in record.risk.rules]
    plain = await lane.inspect(False, reads[0], reads[1])
    assert (plain.verdict, plain.reason) == (Verdict.CLEAR, Reason.CLEAR)


def test_a_bag_needs_no_identity(tmp_path: Path) -> None:
    runtime = RiskRuntime("belt-1", load_keys(pinned(tmp_path)), BundleFiles(tmp_path / "risk"), "seed-belt-1")
    runtime.receive(1, envelope(1))
    conveyor, gantry = RiskCheck(runtime, "belt-1", "conveyor"), RiskCheck(runtime, "belt-1", "gantry")
    assert [f.id for f in conveyor.assess("bag-1", [], "clear").fired if f.kind != "random"] == []
    assert [f.id for f in gantry.assess("bag-1", [], "clear").fired if f.kind != "random"] == ["identity_unread"]


def test_a_route_is_the_declarations_origin_and_the_stations_country(tmp_path: Path) -> None:
    """Route watchlists and rules were authored and published but never fired: the station gave no route."""
    doc = bundle_dict(version=1, issued_at=time.time() - 60, expires_at=time.time() + 3600, random=NO_RANDOM,
                      entries=[WatchEntry("route", "CN-HK", "routes", "watch.route", "intel", lane="amber")],
                      rules=[Rule("R-route", "route", "rule.route", {"fact": "route", "op": "eq", "value": "CN-HK"},
                                  10, "amber")],
                      declarations=[Declaration("D-9", "ACME", container="MSKU9070323", origin="CN")])
    box = [Identity(kind="container", value="MSKU9070323", source="ocr")]
    for country, fired in (("HK", ["route:routes", "R-route"]), (None, [])):
        cfg = pinned(tmp_path).model_copy(update={"country": country})
        runtime = RiskRuntime.start("gate-1", cfg, tmp_path / f"data-{country}")
        assert runtime.receive(1, encode_bundle(doc, HUB_KEY, "risk-1")).outcome == "applied"
        assessment = RiskCheck(runtime, "gate-1", "gantry").assess("item-1", box, "clear")
        assert [f.id for f in assessment.fired if f.kind != "random"] == fired, country


async def test_a_stale_bundle_runs_on_at_the_stale_rate_and_says_so(lane: Lane) -> None:
    t = time.time()
    stale = envelope(1, expires_in=25, now=t - 30, random=RandomPolicy(rate=0.0, stale_rate=1.0))
    assert lane.runtime.receive(1, stale, now=t - 25).outcome == "applied"  # valid when it arrived
    record = await lane.inspect(False, Identity(kind="plate", value="XY 1", source="anpr"))
    assert record.risk is not None and record.risk.stale and record.risk.random is not None
    assert record.risk.random.rate == 1.0 and record.risk.random.selected  # stale rate 1: every item drawn
    assert (record.verdict, record.reason) == (Verdict.MANUAL, Reason.RISK_RED)
    assert lane.runtime.status()["risk_stale"] is True


def test_the_risk_section_is_checked_like_the_rest_of_the_config(tmp_path: Path) -> None:
    from edge.config import load_config
    from edge.errors import ConfigError

    base = (Path(__file__).resolve().parents[2] / "examples" / "xray.toml").read_text()
    good = tmp_path / "good.toml"
    good.write_text(base + '[risk]\nkeys = { "risk-1" = "/etc/k.pub" }\nseed = "s1"\ntimezone = "Asia/Hong_Kong"\n'
                    'country = "HK"\n')
    risk = load_config(good).risk
    assert risk is not None and risk.seed == "s1" and risk.keys == {"risk-1": Path("/etc/k.pub")}
    assert risk.country == "HK"
    bad = tmp_path / "bad.toml"
    bad.write_text(base + '[risk]\ntimezone = "Mars/Olympus"\nrate = 0.5\ncountry = "Hong Kong"\n')
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    text = str(err.value)
    assert "risk.timezone" in text and "Mars/Olympus" in text and "risk.rate" in text and "risk.country" in text
