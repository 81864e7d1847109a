"""The gantry model's training data and evaluation rules (models.training.portal.dataset / evaluate, sampler.Augment)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.training.portal.dataset import CROP, crops_of
from models.stats import wilson
from models.training.portal.evaluate import choose_thresholds, overlaps, scan_figures
from models.training.portal.generator import PortalSpec
from models.training.sampler import Augment, Sampler


def test_crops_hold_their_objects_whole_and_inside() -> None:
    crops = [c for seed in (6, 7) for c in crops_of(seed, PortalSpec(suspect=True, vehicle="van", pixel_mm=8.0))]
    labelled = [boxes for _, boxes in crops if boxes]
    assert len(crops) >= 2 and labelled
    for img, boxes in crops:
        assert img.shape == (2, CROP, CROP) and img.dtype == np.float16
        for b in boxes:
            x0, y0, x1, y1 = b["box"]
            assert x1 > 0 and y1 > 0 and x0 < CROP and y0 < CROP
    # the crop cut for an object holds it whole when it fits
    small = [b for boxes in labelled for b in boxes if b["box"][2] - b["box"][0] < CROP - 16
             and b["box"][3] - b["box"][1] < CROP - 16]
    assert small and any(0 <= b["box"][0] and b["box"][2] <= CROP and 0 <= b["box"][1] and b["box"][3] <= CROP for b in small)


def test_zoomed_crops_keep_boxes_on_the_object(tmp_path: Path) -> None:
    """A bright square and its box: after window zoom the heat-map peak still lies on the square."""
    images = np.zeros((1, 2, 200, 200), np.float16)
    images[0, :, 80:120, 60:100] = 0.8
    np.save(tmp_path / "set.npy", images)
    (tmp_path / "set.json").write_text(json.dumps({"classes": ["drugs"], "truth": [[{"label": "drugs", "box": [60, 80, 100, 120]}]]}))
    sampler = Sampler(tmp_path / "set", 128, np.random.default_rng(0), Augment(False, False, (0.6, 1.15)))
    for _ in range(20):
        crop, heat, *_ = sampler.one()
        if heat.max() < 1.0:
            continue
        r, c = np.unravel_index(np.argmax(heat[0]), heat[0].shape)
        assert crop[0, int(r * 8 + 4), int(c * 8 + 4)] > 0.5


def test_wilson_interval() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    lo, hi = wilson(95, 100)
    assert lo == pytest.approx(0.8883, abs=1e-3) and hi == pytest.approx(0.9785, abs=1e-3)


def test_found_means_the_right_class_overlapping() -> None:
    assert overlaps([10, 10, 20, 20], [0, 0, 100, 100])          # centre inside
    assert not overlaps([200, 200, 220, 220], [0, 0, 100, 100])
    truth = [{"label": "drugs", "box": [0, 0, 50, 50], "mass_kg": 2.0}]
    clean = {"truth": [], "dets": [{"label": "drugs", "score": 0.3, "box": [0, 0, 10, 10]}]}
    hit = {"truth": truth, "dets": [{"label": "drugs", "score": 0.9, "box": [5, 5, 40, 40]}]}
    wrong = {"truth": truth, "dets": [{"label": "cigarettes", "score": 0.9, "box": [5, 5, 40, 40]}]}
    thr = {"cigarettes": 0.5, "drugs": 0.5, "firearm": 0.5, "concealment": 0.5, "load_present": 0.5}
    f = scan_figures([clean, hit, wrong], thr)
    assert f["vehicles_cig_ge_case_or_drugs_ge_1kg_found"]["k"] == 1
    assert f["vehicles_cig_ge_case_or_drugs_ge_1kg_found"]["n"] == 2
    assert f["clean_vehicles_alarming"]["k"] == 0


def test_thresholds_keep_validation_false_alarms_in_budget() -> None:
    rng = np.random.default_rng(1)
    rows: list[dict[str, Any]] = [{"truth": [], "declared_empty": False,
             "dets": [{"label": "drugs", "score": float(s), "box": [0, 0, 5, 5]}]} for s in rng.random(400)]
    thr = choose_thresholds(rows)
    alarms = sum(r["dets"][0]["score"] >= thr["drugs"] for r in rows)
    assert alarms <= 0.005 * len(rows) and thr["drugs"] > 0.9


def test_a_gantry_package_may_clear_only_when_every_goal_is_met(tmp_path: Path) -> None:
    from models.manifest import load_manifest
    from models.training.portal.card import GOALS, goals_met, write_manifest

    shipped = json.loads((Path(__file__).resolve().parents[2] / "models/zoo/cpe-gantry/evaluation.json").read_text())
    assert goals_met(shipped["figures"]) is False
    met: dict = {}
    for block, key, field, target, op in GOALS:
        met.setdefault(block, {})[key] = {field: target}
    assert goals_met(met) is True
    del met["generator_B"]
    assert goals_met(met) is False, "an unmeasured goal is not met"
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    write_manifest(tmp_path, {c: 0.5 for c in ("cigarettes", "drugs", "firearm", "concealment", "load_present")})
    assert load_manifest(tmp_path).clears is False
