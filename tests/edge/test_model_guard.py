"""The guard against the wrong model, through the real inspection path (real ONNX, pool, store, scanner).

What an officer relies on: a scan the model was not made for (pitch, item kind, energy, content)
is never `clear` or `suspect`, it is `manual` with reason model_not_applicable, and a station with
no model made for its scans says so in an alarm and sends every item to manual.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from central_sync.schema import ItemKind, Verdict
from drivers.xray import ScannerConfig, open_scanner
from edge.config import ModelSection
from edge.detector import Engine, load_engine, model_problem
from edge.devices import Devices
from edge.events import EventBus
from edge.inspection import Inspector, Item
from edge.metrics import StationMetrics
from edge.stations.acquisition import WholeScan, start_line_scan
from edge.store import Store, StoreWriter
from edge.verdict import Reason
from models.applicability import ScanFacts
from models.cli import ZOO
from models.errors import ManifestError
from models.pool import InferencePool
from models.runtime import load_detector
from models.scan import Scan, save_scan
from models.testgraphs import air, case, paint_square, write_package

APPLIES = ('item_kinds = ["baggage", "parcel"]\npixel_mm = [0.8, 1.25]\nenergy_kev = [100.0, 200.0]\n'
           'lines = [64, 4000]\npixels = [64, 2048]')
BAGGAGE = ScanFacts(item_kind="baggage", pixel_mm=1.0, energy_kev=160.0)
FAST = dict(heartbeat_ms=50, stale_ms=300, reconnect_ms=50, ack_timeout_ms=100, scan_idle_timeout_ms=2000,
            ready_timeout_ms=1000)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_package(tmp_path_factory.mktemp("pkg") / "bags", "cpe-fcos-v1", 128, name="bags", applies=APPLIES)


def bag(threat: bool, meta: dict | None = None) -> Scan:
    high, low = case(256, 200)
    if threat:
        paint_square(high, low, 100, 60, "metal")
    return Scan(high, low, {"pixel_mm": 1.0, "kvp": 160.0} if meta is None else meta)


class Rig:
    def __init__(self, store: StoreWriter, pool: InferencePool, package: Path) -> None:
        self.store, self.pool, self.package = store, pool, package
        self.detector = load_detector(package, overlap=32)

    def inspector(self, facts: ScanFacts = BAGGAGE, engine: Engine | None = None) -> Inspector:
        async def actuate(item: Item, verdict: Verdict, reason: Reason) -> None:
            return None

        return Inspector("st-1", "1", 5000, engine or Engine(self.detector, self.pool, facts=facts), self.store,
                         EventBus(), StationMetrics(), actuate)

    async def verdict(self, scan: Scan, kind: ItemKind = ItemKind.BAGGAGE, facts: ScanFacts = BAGGAGE) -> tuple[str, str]:
        record = await self.inspector(facts).inspect(Item("bag", kind), WholeScan(scan))
        return record.verdict.value, record.reason


@pytest.fixture
async def rig(tmp_path: Path, package: Path):
    async with InferencePool(1, 4) as pool, StoreWriter(Store(tmp_path / "data", station="st-1")) as store:
        yield Rig(store, pool, package)


async def test_a_scan_the_model_is_made_for_is_still_decided(rig: Rig) -> None:
    assert await rig.verdict(bag(True)) == ("suspect", "detection")
    assert await rig.verdict(bag(False)) == ("clear", "clear")


async def test_wrong_item_kind_is_manual_not_applicable(rig: Rig) -> None:
    facts = ScanFacts(item_kind="vehicle", pixel_mm=1.0, energy_kev=160.0)
    assert await rig.verdict(bag(True), ItemKind.VEHICLE, facts) == ("manual", "model_not_applicable")
    assert await rig.verdict(bag(False), ItemKind.VEHICLE, facts) == ("manual", "model_not_applicable")


async def test_the_scans_own_pitch_and_energy_are_judged(rig: Rig) -> None:
    assert await rig.verdict(bag(True, {"pixel_mm": 8.0, "kvp": 160.0})) == ("manual", "model_not_applicable")
    assert await rig.verdict(bag(False, {"pixel_mm": 1.0, "energy_kev": 6000.0})) == ("manual", "model_not_applicable")


async def test_the_items_kind_counts_not_a_files_label(rig: Rig) -> None:
    assert await rig.verdict(bag(True, {"pixel_mm": 1.0, "kind": "vehicle"})) == ("suspect", "detection")


async def test_an_all_air_scan_is_manual_not_applicable(rig: Rig) -> None:
    high, low = air(256, 200)
    assert await rig.verdict(Scan(high, low, {"pixel_mm": 1.0})) == ("manual", "model_not_applicable")


async def test_an_opaque_scan_is_manual_not_applicable(rig: Rig) -> None:
    high, low = np.zeros((256, 200), np.uint16), np.zeros((256, 200), np.uint16)
    paint_square(high, low, 100, 60, "metal")
    assert await rig.verdict(Scan(high, low, {"pixel_mm": 1.0})) == ("manual", "model_not_applicable")


async def test_a_noise_scan_and_a_strip_are_manual_not_applicable(rig: Rig) -> None:
    rng = np.random.default_rng(4)
    noise = rng.integers(0, 65535, (256, 200), dtype=np.uint16)
    assert await rig.verdict(Scan(noise, noise.copy(), {"pixel_mm": 1.0})) == ("manual", "model_not_applicable")
    high, low = case(64, 3000)
    assert await rig.verdict(Scan(high, low, {"pixel_mm": 1.0})) == ("manual", "model_not_applicable")


def _scanner(tmp_path: Path, pixel_mm: float) -> ScannerConfig:
    """The firmware emulator playing one bag with a threat, stating `pixel_mm` as the real driver does."""
    (tmp_path / "scans").mkdir(exist_ok=True)
    save_scan(bag(True, {}), tmp_path / "scans" / "bag.npz")
    # a FIFO that holds the whole bag: the test is about the pitch, not about keeping up on a loaded machine
    return ScannerConfig(kind="sim", sim={"scan_dir": tmp_path / "scans", "line_rate": 1000, "fifo_lines": 4096,
                                          "boot_ms": 100},
                         pixel_mm=pixel_mm, kvp=160, **FAST)


@pytest.mark.parametrize("pixel_mm, outcome", [(1.0, ("suspect", "detection")), (8.0, ("manual", "model_not_applicable"))])
async def test_streamed_scan_at_the_wrong_pitch_spends_no_inference(rig: Rig, tmp_path: Path, pixel_mm: float,
                                                                    outcome: tuple[str, str]) -> None:
    """The station's scanner pitch is the streamed scan's: the model refuses at the first line, runs no tile."""
    facts = ScanFacts(item_kind="baggage", pixel_mm=pixel_mm, energy_kev=160.0)
    async with open_scanner(_scanner(tmp_path, pixel_mm), "xray") as scanner:
        acquisition = await start_line_scan(Devices(scanner=scanner), "bag-s")
        tiles = rig.detector.stats()["tiles"]
        record = await rig.inspector(facts).inspect(Item("bag-s", ItemKind.BAGGAGE), acquisition)
    assert (record.verdict.value, record.reason) == outcome
    assert record.scan is not None and record.scan.shape == (256, 200)  # kept as evidence either way
    assert (rig.detector.stats()["tiles"] > tiles) is (outcome[0] == "suspect")


async def test_a_station_with_no_model_made_for_its_scans_alarms_and_sends_everything_to_manual(rig: Rig) -> None:
    """Like examples/gantry.toml until a vehicle model ships: vehicles at 1 mm, which no shipped model judges."""
    facts = ScanFacts(item_kind="vehicle", pixel_mm=1.0, energy_kev=160.0)
    engine = await load_engine(ModelSection(), "gantry-1", rig.store, rig.pool, facts)
    assert engine.detector is None
    alarms = dict(await rig.store.call(rig.store.store.standing_alarms))
    assert "vehicle scans at 1 mm" in alarms["model_unavailable"] and "not vehicle" in alarms["model_unavailable"]
    record = await rig.inspector(engine=engine).inspect(Item("vehicle", ItemKind.VEHICLE), WholeScan(bag(True)))
    assert (record.verdict.value, record.reason) == ("manual", "model_unavailable")


async def test_a_configured_model_made_for_other_scans_alarms_and_never_decides(rig: Rig) -> None:
    facts = ScanFacts(item_kind="vehicle", pixel_mm=8.0, energy_kev=6000.0)
    engine = await load_engine(ModelSection(dir=rig.package), "gantry-1", rig.store, rig.pool, facts)
    alarms = dict(await rig.store.call(rig.store.store.standing_alarms))
    assert "bags is made for baggage, parcel scans, not vehicle" in alarms["model_unavailable"]
    record = await rig.inspector(engine=engine).inspect(Item("vehicle", ItemKind.VEHICLE), WholeScan(bag(True)))
    assert (record.verdict.value, record.reason) == ("manual", "model_not_applicable")


async def test_a_model_asking_for_tiles_over_the_limit_leaves_the_station_running_with_every_item_manual(
        rig: Rig, tmp_path: Path) -> None:
    """A model whose graph leaves the tile's size open, its manifest asking for 262144 x 262144 pixels: the
    warm-up's MemoryError (512 GiB) was no ModelError, so the station failed at every start, and `edge
    check-config` said ok. Now it is refused at load in one sentence, an alarm stands, items go to manual."""
    pkg = write_package(tmp_path / "huge", "cpe-fcos-v1", 128, name="huge", applies=APPLIES, dynamic=True)
    (pkg / "manifest.toml").write_text((pkg / "manifest.toml").read_text().replace("size = [128, 128]",
                                                                                 "size = [262144, 262144]"))
    section = ModelSection(dir=pkg)
    too_large = ("model huge 1.0.0 asks for tiles of 262144 x 262144 pixels ([input] size), more than the 2048 "
                 "pixels each way this station runs ([model] max_tile_px), so it is not loaded")
    assert model_problem(section, BAGGAGE) == too_large
    engine = await load_engine(section, "st-1", rig.store, rig.pool, BAGGAGE)
    assert engine.detector is None and engine.problem.startswith(too_large)
    alarms = dict(await rig.store.call(rig.store.store.standing_alarms))
    assert alarms["model_unavailable"].startswith(too_large) and alarms["model_unavailable"].endswith(
        "; every item goes to manual")
    record = await rig.inspector(engine=engine).inspect(Item("bag", ItemKind.BAGGAGE), WholeScan(bag(True)))
    assert (record.verdict.value, record.reason) == ("manual", "model_unavailable")
    candidate = Engine(rig.detector, rig.pool, max_tile_px=section.max_tile_px)  # a roll-out's candidate, the hub's switch
    with pytest.raises(ManifestError, match="asks for tiles of 262144 x 262144 pixels"):
        candidate.load(pkg)


def test_check_config_warns_when_no_shipped_model_is_made_for_the_station(tmp_path: Path, capsys) -> None:
    from edge.cli import main

    examples = Path(__file__).resolve().parents[2] / "examples"
    vehicles = tmp_path / "vehicles.toml"
    vehicles.write_text((examples / "conveyor.toml").read_text().replace('item_kind = "baggage"', 'item_kind = "vehicle"'))
    assert main(["check-config", "--skip-files", str(examples / "conveyor.toml"), str(vehicles)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{examples / 'conveyor.toml'}: ok", f"{vehicles}: ok"]
    [warning] = err.splitlines()  # one line; a vehicle model shipped later adds its own reason to it
    assert warning.startswith(f"{vehicles}: warning: model: no model under {ZOO} is made for vehicle scans at 1 mm, "
                              "160 keV: model cpe-tiny is made for baggage, parcel scans, not vehicle")
    assert warning.endswith("; every item will go to manual")


def test_check_config_warns_when_a_threshold_names_a_class_the_model_lacks(tmp_path: Path, capsys) -> None:
    """`[model] thresholds = {kniffe = 0.5}` passed check-config; at start the detector refused it and the station
    ran without its model, every item to manual."""
    from edge.cli import main

    examples = Path(__file__).resolve().parents[2] / "examples"
    typo = tmp_path / "typo.toml"
    typo.write_text((examples / "conveyor.toml").read_text().replace("[model]\n", "[model]\nthresholds = { kniffe = 0.5 }\n", 1))
    assert main(["check-config", "--skip-files", str(typo)]) == 0
    [warning] = capsys.readouterr()[1].splitlines()
    assert "[model] thresholds name classes the model cpe-tiny does not have: ['kniffe']" in warning, warning
    assert warning.endswith("; every item will go to manual")


class Blocks:
    """A line scan delivered in blocks of 64 lines, as the scanner driver delivers them."""

    def __init__(self, scan: Scan) -> None:
        self.scan = scan

    async def blocks(self):
        for y in range(0, self.scan.shape[0], 64):
            yield self.scan.high[y : y + 64], self.scan.low[y : y + 64]
            await asyncio.sleep(0.02)  # lines take time to come: queued strips run meanwhile

    def result(self) -> Scan:
        return self.scan


async def test_a_scan_growing_past_the_models_length_stops_spending_inference(rig: Rig, tmp_path: Path) -> None:
    short = write_package(tmp_path / "short", "cpe-fcos-v1", 128, name="short", applies="lines = [64, 300]")
    detector = load_detector(short, overlap=32)
    high, low = case(640, 200)
    paint_square(high, low, 100, 60, "metal")
    engine = Engine(detector, rig.pool, facts=BAGGAGE)
    record = await rig.inspector(engine=engine).inspect(Item("long", ItemKind.BAGGAGE), Blocks(Scan(high, low)))
    assert (record.verdict.value, record.reason) == ("manual", "model_not_applicable")
    full = len(detector.tile_grid((640, 200))[0]) * len(detector.tile_grid((640, 200))[1])
    assert detector.stats()["tiles"] <= full // 2  # strips queued up to the 320th line at most, the rest never


async def test_a_model_that_may_not_clear_flags_what_it_finds_and_sends_the_rest_to_an_officer(
        rig: Rig, tmp_path: Path) -> None:
    """cpe-gantry 1.0 ships with `clears = false` (below its goals): finding nothing is not a clear."""
    advisory = write_package(tmp_path / "advisory", "cpe-fcos-v1", 128, name="advisory", applies=APPLIES, clears=False)
    engine = Engine(load_detector(advisory, overlap=32), rig.pool, facts=BAGGAGE)
    inspector = rig.inspector(engine=engine)
    found = await inspector.inspect(Item("bag", ItemKind.BAGGAGE), WholeScan(bag(True)))
    nothing = await inspector.inspect(Item("bag", ItemKind.BAGGAGE), WholeScan(bag(False)))
    assert (found.verdict, found.reason) == (Verdict.SUSPECT, "detection")
    assert (nothing.verdict, nothing.reason) == (Verdict.MANUAL, Reason.MODEL_CANNOT_CLEAR)


def test_the_shipped_gantry_model_may_not_clear() -> None:
    from models.manifest import load_manifest

    assert load_manifest(ZOO / "cpe-gantry").clears is False
    assert load_manifest(ZOO / "cpe-tiny").clears is True


async def test_a_single_energy_scan_is_not_judged_by_a_dual_energy_model(rig: Rig, tmp_path: Path) -> None:
    """A retrofit source's image (its low channel a copy of the high) says so in its meta: a model made for
    dual-energy scans may not clear it, even one whose manifest states no channel ratio to catch it."""
    high, _ = case(256, 200)
    single = {"pixel_mm": 1.0, "kvp": 160.0, "single_energy": True}
    assert await rig.verdict(Scan(high, high.copy(), single)) == ("manual", "model_not_applicable")
    record = await rig.inspector().inspect(Item("mono", ItemKind.BAGGAGE), WholeScan(Scan(high, high.copy(), single)))
    assert record.model is not None and record.model.name == "bags"
    # the same image without the flag is judged (nothing else tells the two apart for this manifest)
    assert await rig.verdict(Scan(high, high.copy(), {"pixel_mm": 1.0, "kvp": 160.0})) == ("clear", "clear")
    # a model whose manifest says it is made for single-energy scans judges them
    mono = write_package(tmp_path / "mono", "cpe-fcos-v1", 128, name="mono", applies=APPLIES + "\nsingle_energy = true")
    engine = Engine(load_detector(mono, overlap=32), rig.pool, facts=BAGGAGE)
    record = await rig.inspector(engine=engine).inspect(Item("mono", ItemKind.BAGGAGE),
                                                        WholeScan(Scan(high, high.copy(), single)))
    assert (record.verdict.value, record.reason) == ("clear", "clear")


class SwitchMidScan(Blocks):
    """Blocks of a scan; after the first, the station is switched to another model (a rollout's switch)."""

    def __init__(self, scan: Scan, engine: Engine, other: Path) -> None:
        super().__init__(scan)
        self.engine, self.other = engine, other

    async def blocks(self):
        first = True
        async for block in super().blocks():
            yield block
            if first:
                self.engine.use(load_detector(self.other, overlap=32))
                first = False


async def test_a_model_switched_mid_scan_leaves_the_scan_to_the_model_it_started_on(rig: Rig, tmp_path: Path) -> None:
    """A model that may not clear finds nothing in a scan; a switch to one that may clear arrives while the
    lines come: the empty result is still the first model's, read under its own manifest (manual), and the
    record names it. Before, the new model's `clears = true` cleared the item the old one was not trusted to."""
    strict = write_package(tmp_path / "strict", "cpe-fcos-v1", 128, name="strict", applies=APPLIES, clears=False)
    trusted = write_package(tmp_path / "trusted", "cpe-fcos-v1", 128, name="trusted", applies=APPLIES)
    engine = Engine(load_detector(strict, overlap=32), rig.pool, facts=BAGGAGE)
    high, low = case(256, 200)
    record = await rig.inspector(engine=engine).inspect(Item("bag", ItemKind.BAGGAGE),
                                                        SwitchMidScan(Scan(high, low, {"pixel_mm": 1.0}), engine, trusted))
    assert engine.model is not None and engine.model.name == "trusted"  # the switch took place mid-scan
    assert (record.verdict.value, record.reason) == ("manual", "model_cannot_clear")
    assert record.model is not None and record.model.name == "strict"
    # the next scan is the new model's
    record = await rig.inspector(engine=engine).inspect(Item("bag2", ItemKind.BAGGAGE), Blocks(Scan(high, low, {"pixel_mm": 1.0})))
    assert (record.verdict.value, record.reason, record.model.name) == ("clear", "clear", "trusted")
