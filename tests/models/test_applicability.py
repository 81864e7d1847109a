"""Model applicability: the manifest's [applies], the metadata and content checks, selection by manifest.

The content check must refuse what no model can judge (opaque, air, noise, 1 x 1, strips) and never
a real scan: every example scan, generated bags and vehicles, TIP composites and retrofit video frames.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from central_sync.schema import ItemKind
from models.applicability import ScanFacts, content_problem, metadata_problem, scan_problem
from models.cli import ZOO, detect_file, select_model
from models.errors import ManifestError, NoApplicableModel, NotApplicable
from models.manifest import ItemKindName, load_manifest
from models.scan import Scan, load_scan, save_scan
from models.testgraphs import air, case, paint_square, write_package

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples" / "scans").rglob("*.npz"))
VEHICLES = ('item_kinds = ["vehicle", "container"]\npixel_mm = [5.0, 10.0]\nenergy_kev = [200.0, 9500.0]\n'
            'lines = [64, 8000]\npixels = [256, 1400]')
TINY = load_manifest(ZOO / "cpe-tiny")


def test_item_kinds_are_the_records_item_kinds():
    assert set(ItemKindName.__args__) == {k.value for k in ItemKind}


@pytest.mark.parametrize("body, key", [('pixel_mm = [10.0, 5.0]', "applies.pixel_mm"),
                                       ('item_kinds = ["lorry"]', "applies.item_kinds.0"),
                                       ('lines = [0, 100]', "applies.lines"),
                                       ('item_kinds = []', "applies.item_kinds"),
                                       ('pitch = [1.0, 2.0]', "applies.pitch")])
def test_a_bad_applies_section_names_its_key(tmp_path, body, key):
    with pytest.raises(ManifestError, match=f"key '{key}'"):
        load_manifest(write_package(tmp_path / "p", applies=body))


def test_without_applies_only_the_pitch_counts_within_ten_percent(fcos_dir):
    m = load_manifest(fcos_dir)
    assert m.applies is None
    assert metadata_problem(m, ScanFacts("vehicle", 1.09, 9000.0, 1, 100_000)) is None
    assert metadata_problem(m, ScanFacts(pixel_mm=1.12)) == \
        f"model {m.name} is made for pixel pitch 0.9 to 1.1 mm; this scan's is 1.12 mm"


def test_an_applies_table_without_a_pitch_still_judges_the_pitch_within_ten_percent(tmp_path):
    """The [input] pixel_mm fallback held only without [applies]: a table naming item kinds alone let a model
    trained at 1 mm judge 7.5 mm scans."""
    m = load_manifest(write_package(tmp_path / "b", name="bags", applies='item_kinds = ["baggage"]'))
    assert metadata_problem(m, ScanFacts("baggage", 1.05, 6000.0)) is None
    assert metadata_problem(m, ScanFacts("baggage", 7.5, 160.0)) == \
        "model bags is made for pixel pitch 0.9 to 1.1 mm; this scan's is 7.5 mm"
    assert metadata_problem(m, ScanFacts("parcel", 1.0)) == "model bags is made for baggage scans, not parcel"


def test_each_fact_outside_the_manifest_is_named_with_its_values(tmp_path):
    m = load_manifest(write_package(tmp_path / "v", name="portal", pixel_mm=8.0, applies=VEHICLES))
    ok = ScanFacts("container", 8.0, 6000.0, 3000, 1024)
    assert metadata_problem(m, ok) is None
    assert metadata_problem(m, ScanFacts()) is None  # unstated facts are not held against a scan
    cases = {"item_kind": ("baggage", "made for vehicle, container scans, not baggage"),
             "pixel_mm": (1.0, "pixel pitch 5 to 10 mm; this scan's is 1 mm"),
             "energy_kev": (160.0, "peak energy 200 to 9500 keV; this scan's is 160 keV"),
             "lines": (9000, "scan length 64 to 8000 lines; this scan's is 9000 lines"),
             "pixels": (200, "scan width 256 to 1400 pixels; this scan's is 200 pixels")}
    for field, (value, words) in cases.items():
        problem = metadata_problem(m, ScanFacts(**{**ok.__dict__, field: value}))
        assert problem is not None and problem.startswith("model portal is made for") and words in problem
    growing = ScanFacts(**{**ok.__dict__, "lines": 10})
    assert metadata_problem(m, growing, growing=True) is None and metadata_problem(m, growing) is not None


def test_facts_come_from_meta_energy_or_kvp():
    facts = ScanFacts.of_meta({"kind": "vehicle", "pixel_mm": 8, "kvp": 160, "energy_kev": 6000}, (680, 300))
    assert facts == ScanFacts("vehicle", 8.0, 6000.0, 680, 300)
    assert ScanFacts.of_meta({"pixel_mm": "1", "kvp": True}) == ScanFacts()
    assert ScanFacts(item_kind="baggage", pixel_mm=1.0).updated(ScanFacts(pixel_mm=8.0, lines=5)) == \
        ScanFacts("baggage", 8.0, None, 5, None)


def _planes(kind: str) -> tuple[np.ndarray, np.ndarray]:
    if kind == "opaque":
        return np.zeros((300, 300), np.uint16), np.full((300, 300), 3, np.uint16)
    if kind == "air":
        high, low = air(300, 300)
        high[5, 5] = low[5, 5] = 0  # one dead pixel does not make air an image
        return high, low
    if kind == "noise":
        rng = np.random.default_rng(1)
        return (rng.integers(0, 65536, (300, 300), dtype=np.uint16),
                rng.integers(0, 65536, (300, 300), dtype=np.uint16))
    return case(*{"1x1": (1, 1), "strip": (64, 100_000), "tall": (100_000, 64), "thin": (20, 400)}[kind])


@pytest.mark.parametrize("kind, words", [("opaque", "opaque"), ("air", "all air"), ("noise", "noise"),
                                         ("1x1", "1 lines x 1 pixels"), ("strip", "a strip"),
                                         ("tall", "a strip"), ("thin", "fewer than 32")])
def test_content_no_model_can_judge_is_named(kind, words):
    problem = content_problem(*_planes(kind))
    assert problem is not None and words in problem


def test_a_small_object_alone_is_not_air():
    high, low = air(448, 448)
    paint_square(high, low, 200, 200, "organic")
    assert content_problem(high, low) is None


def _real_scans() -> list[tuple[str, Scan]]:
    """Every example scan, TIP composites of them, and their retrofit video frames."""
    from drivers.retrofit.sim import to_display
    from drivers.retrofit.video import frame_to_scan
    from edge import tip

    scans = [(p.name, load_scan(p)) for p in EXAMPLES]
    threats = tip.load_library(tip.SHIPPED_LIBRARY)
    bags = [s for n, s in scans if n.startswith("bag_")]
    for i, (name, threat) in enumerate(sorted(threats.items())):
        scans.append((f"tip {name}", tip.composite(bags[i % len(bags)], threat, tip.Projection(name, 100, 120, 1.0))))
    scans += [(f"video {n}", frame_to_scan(to_display(s, (160, 120)), "video", {})) for n, s in scans[:len(EXAMPLES)]]
    return scans


def test_no_real_scan_is_refused_for_its_content():
    refused = {name: content_problem(s.high, s.low) for name, s in _real_scans()}
    assert len(refused) > 40 and not {n: p for n, p in refused.items() if p}


def test_generated_bags_and_vehicles_are_never_refused_for_their_content():
    pytest.importorskip("xraylib")
    from models.evalgen import alt_portal_scan
    from models.training.portal import PortalSpec, portal_scan
    from models.training.scene import SceneSpec, synth_scan

    scans = [synth_scan(seed, SceneSpec(lines=448, pixels=448)) for seed in range(5100, 5106)]
    scans += [portal_scan(seed, PortalSpec(vehicle=v)) for seed, v in ((1, "van"), (2, "tractor_40ft"))]
    scans += [alt_portal_scan(seed, vehicle=v) for seed, v in ((1, "saloon"), (2, "tractor_40ft"))]
    assert [content_problem(s.high, s.low) for s in scans] == [None] * len(scans)


def test_cpe_tiny_judges_every_example_bag_and_no_vehicle():
    verdicts = {p.name: scan_problem(TINY, ScanFacts.of_meta(s.meta, s.shape), s.high, s.low)
                for p in EXAMPLES for s in [load_scan(p)]}
    assert {n for n, p in verdicts.items() if p is None} == {p.name for p in EXAMPLES if p.name.startswith("bag_")}
    assert verdicts["van_cigarettes_01.npz"] == "model cpe-tiny is made for baggage, parcel scans, not vehicle"


@pytest.fixture
def zoo(tmp_path, fcos_dir) -> Path:
    """A zoo of cpe-tiny's manifest ranges (as 'cpe-tiny') and a vehicle model ('portal')."""
    bags = 'item_kinds = ["baggage", "parcel"]\npixel_mm = [0.8, 1.25]\nenergy_kev = [100.0, 200.0]'
    write_package(tmp_path / "zoo" / "cpe-tiny", name="cpe-tiny", applies=bags)
    write_package(tmp_path / "zoo" / "portal", name="portal", pixel_mm=8.0, applies=VEHICLES)
    shutil.copytree(fcos_dir, tmp_path / "zoo" / "broken")
    (tmp_path / "zoo" / "broken" / "manifest.toml").write_text("name = ")
    return tmp_path / "zoo"


def test_selection_by_manifest_picks_the_model_made_for_the_scans(zoo):
    assert select_model(ScanFacts("baggage", 1.0, 160.0), zoo).name == "cpe-tiny"
    assert select_model(ScanFacts("vehicle", 8.0, 450.0), zoo).name == "portal"
    assert select_model(ScanFacts("container", 5.0, 9000.0), zoo).name == "portal"
    assert select_model(ScanFacts(), zoo).name == "cpe-tiny"  # nothing stated: the default model first
    with pytest.raises(NoApplicableModel) as err:
        select_model(ScanFacts("vehicle", 1.0, 160.0), zoo)
    assert str(err.value) == (f"no model under {zoo} is made for vehicle scans at 1 mm, 160 keV: model cpe-tiny is "
                              "made for baggage, parcel scans, not vehicle; model portal is made for pixel pitch "
                              "5 to 10 mm; this scan's is 1 mm")


def test_detect_refuses_a_scan_the_model_is_not_made_for_unless_forced(fcos_dir, tmp_path):
    high, low = case(256, 200)
    paint_square(high, low, 100, 60, "metal")
    path = save_scan(Scan(high, low, {"pixel_mm": 8.0}), tmp_path / "wide.npz")
    with pytest.raises(NotApplicable, match="pixel pitch 0.9 to 1.1 mm; this scan's is 8 mm"):
        detect_file(path, fcos_dir)
    assert [d["label"] for d in detect_file(path, fcos_dir, force=True)] == ["metal"]


def test_edge_detect_with_the_baggage_model_on_a_van_exits_non_zero_with_one_line():
    van = ROOT / "examples" / "scans" / "vehicles" / "van_cigarettes_01.npz"
    result = subprocess.run([sys.executable, "-m", "edge.cli", "detect", "--model", str(ZOO / "cpe-tiny"), str(van)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is made for baggage, parcel scans, not vehicle" in lines[0], result.stderr


def test_edge_detect_on_a_van_chooses_the_gantry_model():
    van = load_scan(ROOT / "examples" / "scans" / "vehicles" / "van_cigarettes_01.npz")
    assert select_model(ScanFacts.of_meta(van.meta, van.shape)).name == "cpe-gantry"
