"""The shipped gantry model package models/zoo/cpe-gantry: manifest per the issue-16 contract, runs on its examples."""

from __future__ import annotations

import json
from pathlib import Path

from models.manifest import load_manifest
from models.runtime import load_detector
from models.scan import load_scan
from models.training.portal import CLASSES
from models.training.portal.evaluate import overlaps

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "models" / "zoo" / "cpe-gantry"
VEHICLES = ROOT / "examples" / "scans" / "vehicles"


def test_manifest_follows_the_contract() -> None:
    m = load_manifest(PACKAGE)
    assert m.name == "cpe-gantry" and m.class_names == CLASSES
    assert m.input.channels == ("high", "low") and m.output.format == "cpe-fcos-v1" and m.output.stride == 8
    assert m.applies is not None and set(m.applies.item_kinds or ()) == {"vehicle", "container"}
    assert m.applies.pixel_mm == (5.0, 10.0) and m.applies.energy_kev is not None
    assert m.applies.energy_kev[0] <= 300 and m.applies.energy_kev[1] >= 9000
    figures = json.loads((PACKAGE / "evaluation.json").read_text())
    assert figures["thresholds"] == m.thresholds and figures["sha256"] == m.sha256
    assert {"heldout_A", "generator_B", "validation_A"} <= set(figures["figures"])


def test_it_finds_the_example_cigarettes_and_leaves_the_clean_van_alone() -> None:
    det = load_detector(PACKAGE, warmup_runs=1)
    scan = load_scan(VEHICLES / "van_cigarettes_01.npz")
    truth = [t for t in scan.meta["truth"] if t["label"] == "cigarettes"]
    found = det.detect(scan)
    assert any(d.label == "cigarettes" and overlaps(list(d.box), t["box"]) for d in found for t in truth)
    assert det.detect(load_scan(VEHICLES / "van_clean_01.npz")) == []
