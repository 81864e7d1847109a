"""The closed loop's torch-free steps (models/training/closed_loop.py): a station's real COCO export
(edge/web/export.write_zip over real records and scan files) read, validated, split, mixed and turned
into a candidate package; the torch fine-tune runs only where torch is installed."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_sync.schema import InspectionRecord
from models import signing
from edge.web.export import write_zip
from models.errors import ExportFormatError
from models.manifest import load_manifest
from models.scan import Scan
from models.training import closed_loop as cl
from models.training.dataset import load, seed_ranges

ZOO = Path(__file__).resolve().parents[2] / "models" / "zoo" / "cpe-tiny"
CLASSES = load_manifest(ZOO).class_names
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)


def scan(seed: int, shape: tuple[int, int] = (60, 80)) -> Scan:
    rng = np.random.default_rng(seed)
    high = rng.integers(20_000, 65_535, shape, dtype=np.uint16)
    return Scan(high=high, low=(high * 0.8).astype(np.uint16), meta={"pixel_mm": 1.0})


def record(n: int, sc: Scan, outcome: str | None, label: str | None = None, boxes: list | None = None,
           detections: list | None = None, minutes: int = 0) -> InspectionRecord:
    review = None if outcome is None else {
        "officer": "B7", "decided_at": (T0 + timedelta(minutes=minutes)).isoformat(), "outcome": outcome,
        "label": label, "boxes": boxes or []}
    return InspectionRecord.model_validate({
        "id": f"r{n:04d}", "seq": n, "station": "lane-3", "lane": "bags", "kind": "baggage",
        "started_at": T0.isoformat(), "decided_at": T0.isoformat(), "verdict": "suspect", "reason": "detection",
        "budget_ms": 2000.0, "scan": {"sha256": sc.sha256(), "size": len(sc.to_bytes()), "shape": list(sc.shape)},
        "detections": [{"label": d[0], "score": 0.8, "box": d[1]} for d in detections or []], "review": review})


def station_export(tmp: Path, records: list[tuple[InspectionRecord, Scan]]) -> Path:
    """The zip the station's GET /api/export.zip writes for these records and scans."""
    files = tmp / "scans"
    files.mkdir(exist_ok=True)
    for _, sc in records:
        (files / f"{sc.sha256()}.npz").write_bytes(sc.to_bytes())
    return write_zip([r for r, _ in records], lambda sha: files / f"{sha}.npz", tmp / "lane-3-reviewed.zip")


@pytest.fixture
def export(tmp_path: Path) -> Path:
    s = [scan(i) for i in range(7)]
    return station_export(tmp_path, [
        (record(1, s[0], "threat_confirmed", "knife", boxes=[(10, 5, 30, 25)]), s[0]),
        # confirmed without drawn boxes: the detector's box under the officer's class (not the detector's)
        (record(2, s[1], "threat_confirmed", "phone", detections=[("battery", (40, 10, 70, 40))]), s[1]),
        (record(3, s[2], "false_alarm", detections=[("firearm", (1, 1, 20, 20))]), s[2]),
        (record(4, s[3], "cleared"), s[3]),
        (record(5, s[4], "override", "firearm", boxes=[(0, 0, 10, 10)]), s[4]),
        (record(6, s[5], "threat_confirmed", "explosives", boxes=[(5, 5, 15, 15)]), s[5]),
        (record(7, s[6], "threat_confirmed", "drugs", boxes=[(2, 2, 40, 50), (50, 30, 70, 55)]), s[6]),
    ])


def test_only_what_officers_confirmed_is_kept_under_the_confirmed_class(export):
    reading = cl.read_export(export, CLASSES)
    kept = {i.outcome + ":" + ",".join(label for label, _ in i.boxes) for i in reading.items}
    assert kept == {"threat_confirmed:knife", "threat_confirmed:phone", "false_alarm:", "threat_confirmed:drugs,drugs"}
    phone = next(i for i in reading.items if i.outcome == "threat_confirmed" and i.boxes[0][0] == "phone")
    assert phone.boxes == (("phone", (40.0, 10.0, 70.0, 40.0)),)  # not "battery", the detector's class
    assert dict(reading.dropped) == {"outcome:cleared": 1, "outcome:override": 1, "class_not_in_model:explosives": 1}
    assert reading.annotations_sha256 == hashlib.sha256(zipfile.ZipFile(export).read("annotations.json")).hexdigest()


def test_options_map_classes_and_take_cleared_scans_as_negatives(export, tmp_path):
    folder = tmp_path / "unpacked"
    zipfile.ZipFile(export).extractall(folder)  # the unpacked folder reads as the zip does
    reading = cl.read_export(folder, CLASSES, {"explosives": "drugs"}, ("false_alarm", "cleared"))
    assert len(reading.items) == 6 and sum(1 for i in reading.items if not i.boxes) == 2
    assert dict(reading.dropped) == {"outcome:override": 1}


def test_a_scan_decided_twice_keeps_its_latest_review(tmp_path):
    s = scan(1)
    zipped = station_export(tmp_path, [(record(1, s, "threat_confirmed", "knife", boxes=[(1, 1, 9, 9)]), s),
                                       (record(2, s, "false_alarm", minutes=5), s)])
    reading = cl.read_export(zipped, CLASSES)
    assert [i.outcome for i in reading.items] == ["false_alarm"]
    assert dict(reading.dropped) == {"decided_again": 1}


def test_an_image_without_a_review_is_left_out_and_counted(export, tmp_path):
    # the station exports reviewed items only; a hand-edited or merged export may hold others
    unreviewed = rewrite(export, tmp_path, lambda d: _set(d, "images", 2, "review_outcome", None))
    reading = cl.read_export(unreviewed, CLASSES)
    assert len(reading.items) == 3 and reading.dropped["unreviewed"] == 1


def rewrite(export: Path, tmp: Path, change) -> Path:
    """A copy of the export with annotations.json changed by change(doc) (or removed when it returns None)."""
    out = tmp / "bad.zip"
    with zipfile.ZipFile(export) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            if name == "annotations.json":
                doc = change(json.loads(src.read(name)))
                if doc is not None:
                    dst.writestr(name, doc if isinstance(doc, str) else json.dumps(doc))
            else:
                dst.writestr(name, src.read(name))
    return out


def _set(doc: dict, key: str, i: int, field: str, value: object) -> dict:
    doc[key][i][field] = value
    return doc


@pytest.mark.parametrize("change, says", [
    (lambda d: None, "annotations.json is missing"),
    (lambda d: "{not json", "annotations.json: not JSON"),
    (lambda d: {**d, "images": {}}, "'images' must be a list, got dict"),
    (lambda d: _set(d, "annotations", 0, "bbox", [1, 2, 3]), "expected 4 finite numbers"),
    (lambda d: _set(d, "annotations", 0, "bbox", [70, 50, 30, 30]), "outside its 80×60 image"),
    (lambda d: _set(d, "annotations", 0, "image_id", 99), "names image 99, which the export lacks"),
    (lambda d: _set(d, "annotations", 0, "category_id", 42), "names category 42"),
    (lambda d: _set(d, "images", 1, "id", 1), "id 1, which is not a unique integer"),
    (lambda d: _set(d, "images", 0, "height", 61), "holds a 60×80 scan but annotations.json says 61×80"),
    (lambda d: _set(d, "images", 0, "file_name", "scans/nothing.npz"), "scans/nothing.npz (image 1) is missing"),
    (lambda d: _set(d, "images", 0, "review_outcome", "false_alarm"), "image 1 is a false_alarm but carries 1 boxes"),
])
def test_a_malformed_export_is_refused_in_one_sentence_naming_file_and_problem(export, tmp_path, change, says):
    bad = rewrite(export, tmp_path, change)
    with pytest.raises(ExportFormatError) as err:
        cl.read_export(bad, CLASSES)
    assert says in str(err.value) and str(bad) in str(err.value)
    assert str(err.value).count(". ") == 0 and "\n" not in str(err.value)


def test_a_scan_file_that_is_not_a_scan_is_refused(export, tmp_path):
    bad = tmp_path / "bad"
    zipfile.ZipFile(export).extractall(bad)
    victim = sorted((bad / "scans").iterdir())[0]
    victim.write_bytes(b"not a scan")
    with pytest.raises(ExportFormatError, match=f"{victim.name} is not a readable scan"):
        cl.read_export(bad, CLASSES)


def test_split_is_by_scan_deterministic_and_stable_as_exports_grow():
    items = [cl.Confirmed(hashlib.sha256(str(i).encode()).hexdigest(), f"scans/{i}.npz", "false_alarm", ())
             for i in range(400)]
    train, val = cl.split(items, 0.2)
    assert {c.scan for c in train} | {c.scan for c in val} == {c.scan for c in items}
    assert not {c.scan for c in train} & {c.scan for c in val}
    assert 55 <= len(val) <= 105  # ~80 of 400
    assert cl.split(list(reversed(items)), 0.2)[1] == list(reversed(val))  # order does not matter
    _, val_of_first = cl.split(items[:100], 0.2)
    assert set(val_of_first) == set(val) & set(items[:100])  # a scan keeps its side when more arrive
    assert cl.split(items, 0.0) == (items, [])
    with pytest.raises(ValueError, match="validation share 1.0"):
        cl.split(items, 1.0)


def test_the_mixing_plan_replays_the_base_models_training_block():
    plan = cl.plan_mix(30, 0.5, seed=1)
    assert (plan.confirmed, plan.simulated) == (30, 30)
    assert plan.sim_seeds == seed_ranges(1, 30)["train"]
    assert cl.plan_mix(30, 0.25).simulated == 10 and cl.plan_mix(7, 0.5).simulated == 7
    assert cl.plan_mix(3, 0.0).simulated == 0 and cl.plan_mix(3, 0.0).to_dict()["sim_seeds"] == []
    assert cl.plan_mix(10, 0.2, seed=2).sim_seeds == range(2_000_000, 2_000_003)  # ceil(2.5)
    with pytest.raises(ValueError, match="simulated share 0.99"):
        cl.plan_mix(10, 0.99)
    with pytest.raises(ValueError, match="no confirmed training scans"):
        cl.plan_mix(0, 0.5)


def test_training_set_holds_the_confirmed_scans_as_stored_and_the_simulated_share(export, tmp_path):
    reading = cl.read_export(export, CLASSES)
    sims = np.full((2, 2, 64, 64), 0.5, np.float16)  # a simulated set in the generator's layout
    np.save(tmp_path / "sim.npy", sims)
    (tmp_path / "sim.json").write_text(json.dumps({"classes": list(CLASSES), "truth": [[], [{"label": "knife", "box": [1, 2, 3, 4]}]]}))
    cl.write_set(tmp_path / "train", reading.items, export, CLASSES, tmp_path / "sim")
    images, truth = load(tmp_path / "train")
    assert images.shape == (6, 2, 64, 80)  # padded to the tallest and widest scan
    first = reading.items[0]
    with zipfile.ZipFile(export) as zf:
        from models.scan import load_scan
        from models.training.dataset import attenuation
        sc = load_scan(zf.read(first.file))
    assert np.allclose(images[0, 0, :60, :80], attenuation(sc.high), atol=2e-3)
    assert not images[0, :, 60:, :].any()  # air below the scan
    assert truth[0] == [{"label": label, "box": list(b)} for label, b in first.boxes]
    assert truth[5] == [{"label": "knife", "box": [1, 2, 3, 4]}] and float(images[5, 0, 0, 0]) == 0.5
    assert not images[5, :, :, 64:].any()


def test_provenance_and_candidate_package(export, tmp_path):
    reading = cl.read_export(export, CLASSES)
    train, val = cl.split(reading.items)
    plan = cl.plan_mix(len(train), 0.5)
    prov = cl.provenance(reading, train, val, plan)
    assert prov["scans_per_class"] == {"drugs": 1, "knife": 1, "phone": 1}
    assert prov["boxes_per_class"] == {"drugs": 2, "knife": 1, "phone": 1}
    assert prov["negatives"] == 1 and prov["stations"] == ["lane-3"]
    assert prov["split"]["train"] + prov["split"]["validation"] == 4
    out = tmp_path / "candidate"
    out.mkdir()
    model = tmp_path / "model.onnx"
    shutil.copy(ZOO / "model.onnx", model)  # stands in for the fine-tuned export
    model.write_bytes(model.read_bytes() + b"\0")  # another sha256 than the base's
    cl.write_candidate(out, ZOO, model, cl.candidate_version("2.0.0"), prov)
    m = load_manifest(out)
    assert (m.version, m.sha256) == ("2.0.1", hashlib.sha256(model.read_bytes()).hexdigest())
    assert m.class_names == CLASSES and m.evaluation == {}  # the base's figures are not the candidate's
    assert m.thresholds == load_manifest(ZOO).thresholds
    card = (out / "MODEL.md").read_text()
    assert card.startswith("# cpe-tiny 2.0.1: candidate") and "| knife | 1 | 1 |" in card
    assert reading.annotations_sha256 in card and "## The base model's card" in card
    saved = json.loads((out / "provenance.json").read_text())
    assert saved["base"]["version"] == "2.0.0" and saved["candidate"]["version"] == "2.0.1"
    # ready for roll-out: an admin signs it, a station opens the envelope, and it is no downgrade of 2.0.0
    key = Ed25519PrivateKey.generate()
    signing.sign_package(out, key, "models-test")
    package = signing.open_package(signing.pack(out), {"models-test": key.public_key()})
    assert package.statement["version"] == "2.0.1" and not signing.is_downgrade("2.0.1", "2.0.0")
    assert package.statement["card_sha256"] == hashlib.sha256(card.encode()).hexdigest()


def test_the_stage_refuses_a_missing_export_in_one_line(tmp_path):
    with pytest.raises(SystemExit, match="finetune refused: .*none.zip: no such export"):
        cl.main(["--coco", str(tmp_path / "none.zip"), "--checkpoint", "x.pt", "--out", str(tmp_path / "c"),
                          "--base", str(ZOO)])
    with pytest.raises(ValueError, match="--map 'knife'"):
        cl.parse_map(["knife"])
    assert cl.parse_map(["blade=knife"]) == {"blade": "knife"}


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is installed in the training environment only")
def test_a_few_cpu_steps_fine_tune_a_candidate_the_station_loads(bag_export, tmp_path, monkeypatch, capsys):
    export = bag_export
    import sys

    import torch

    from models.runtime import load_detector
    from models.training import recipe
    from models.training.model import ARCHS, TinyDet
    from models.training.train import TrainConfig, _save

    torch.manual_seed(0)
    # scan files carry their write time (zip entries), so their sha256 differ per run: pick the share that
    # sends exactly one scan to validation
    cuts = sorted(int(hashlib.sha256(i.scan.encode()).hexdigest()[:8], 16) / 16**8
                  for i in cl.read_export(export, CLASSES, manifest=load_manifest(ZOO)).items)
    share = str((cuts[0] + cuts[1]) / 2)
    _save(TinyDet(len(CLASSES), arch=ARCHS["tiny"]), 0, TrainConfig(), [], "float16", tmp_path / "base.pt")
    argv = ["recipe", "finetune", "--coco", str(export), "--base", str(ZOO), "--checkpoint", str(tmp_path / "base.pt"),
            "--out", str(tmp_path / "cand"), "--work", str(tmp_path / "work"), "--sim-share", "0.2", "--val-share", share,
            "--steps", "3", "--batch", "2", "--crop", "64", "--ema", "0", "--lr", "0.01"]
    monkeypatch.setattr(sys, "argv", argv)
    recipe.main()  # python -m models.training.recipe finetune ...
    assert capsys.readouterr().out.splitlines()[-1] == f"candidate written to {tmp_path / 'cand'}"
    out = tmp_path / "cand"
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["checkpoint_sha256"] == hashlib.sha256((tmp_path / "base.pt").read_bytes()).hexdigest()
    assert prov["mix"]["simulated"] == 1 and load(tmp_path / "work" / "train")[0].shape[0] == prov["split"]["train"] + 1
    tuned = torch.load(tmp_path / "work" / "checkpoint.pt", map_location="cpu")
    base = torch.load(tmp_path / "base.pt", map_location="cpu")
    assert tuned["history"][-1]["steps"] == 3 and len(tuned["history"]) == 2  # continued from the base
    assert not torch.equal(tuned["model"]["cls.weight"], base["model"]["cls.weight"])
    val = cl.split(cl.read_export(export, CLASSES, manifest=load_manifest(ZOO)).items, float(share))[1]
    assert [*prov["validation"]] == ["base", "candidate"] and len(val) == prov["split"]["validation"] == 1
    assert "## On the confirmed validation split" in (out / "MODEL.md").read_text()
    detector = load_detector(out)  # the station's loader: manifest, sha256, ONNX
    assert detector.manifest.version == "2.0.1"
    detector.detect(scan(99, (200, 300)))


EXAMPLES = ZOO.parents[2] / "examples" / "scans"


def example(name: str) -> Scan:
    from models.scan import load_scan

    sc = load_scan(EXAMPLES / f"{name}.npz")
    sc.meta.pop("truth")
    return sc


@pytest.fixture
def bag_export(tmp_path: Path) -> Path:
    """An export of the shipped example bags (and one vehicle scan) as officers reviewed them."""
    bags = {n: example(n) for n in ("bag_firearm_01", "bag_knife_01", "bag_battery_01", "bag_clean_01",
                                      "vehicles/car_drugs_spare_wheel_01")}
    return station_export(tmp_path, [
        (record(1, bags["bag_firearm_01"], "threat_confirmed", "firearm", boxes=[(186, 179, 338, 369)]), bags["bag_firearm_01"]),
        (record(2, bags["bag_knife_01"], "threat_confirmed", "knife", boxes=[(0, 0, 40, 40)]), bags["bag_knife_01"]),  # not where it is
        (record(3, bags["bag_battery_01"], "false_alarm"), bags["bag_battery_01"]),  # the shipped model finds a battery there
        (record(4, bags["bag_clean_01"], "false_alarm"), bags["bag_clean_01"]),
        (record(5, bags["vehicles/car_drugs_spare_wheel_01"], "threat_confirmed", "drugs", boxes=[(10, 10, 50, 50)]),
         bags["vehicles/car_drugs_spare_wheel_01"]),
    ])


def test_scans_the_base_model_is_not_made_for_are_left_out(bag_export):
    reading = cl.read_export(bag_export, CLASSES, manifest=load_manifest(ZOO))
    assert len(reading.items) == 4 and dict(reading.dropped) == {"not_applicable": 1}
    assert len(reading.not_applicable) == 1 and "vehicle" in reading.not_applicable[0]
    assert len(cl.read_export(bag_export, CLASSES).items) == 5  # without the manifest, nothing is checked


def test_validation_runs_each_package_as_the_station_does(bag_export):
    items = cl.read_export(bag_export, CLASSES, manifest=load_manifest(ZOO)).items
    v = cl.compare(items, bag_export, {"base": ZOO})
    assert {c: (r["k"], r["n"]) for c, r in v["base"]["boxes_found"].items()} == {"firearm": (1, 1), "knife": (0, 1)}
    assert (v["base"]["negatives_alarmed"]["k"], v["base"]["negatives_alarmed"]["n"]) == (1, 2)
    section = cl._validation(v)
    assert "| firearm boxes found | 1/1 (0.21–1.00) |" in section and "| negatives that alarm | 1/2 (0.09–0.91) |" in section
