"""Regression: the shipped cpe-tiny package is intact and still finds threats in the example scans."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import numpy as np
import pytest

from models.scan import load_scan
from models.training.infer import decode, session, tile_input

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "models" / "zoo" / "cpe-tiny"
SCANS = sorted((ROOT / "examples" / "scans").glob("bag_*.npz"))


@pytest.fixture(scope="module")
def manifest() -> dict:
    return tomllib.loads((PACKAGE / "manifest.toml").read_text())


@pytest.fixture(scope="module")
def results(manifest) -> list[tuple[list[dict], list[tuple[str, float, list[float]]]]]:
    """Truth and detections (at the shipped thresholds) of every example bag."""
    names = [c["name"] for c in manifest["classes"]]
    thresholds = np.array([c["threshold"] for c in manifest["classes"]], np.float32)
    sess = session(PACKAGE / "model.onnx")
    out = []
    for path in SCANS:
        scan = load_scan(path)
        scores, ltrb = sess.run(["scores", "ltrb"], {"input": tile_input(scan.high, scan.low)})
        dets = [(names[k], s, box) for k, s, box in decode(scores[0], ltrb[0], thresholds)]
        out.append((scan.meta["truth"], dets))
    return out


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_manifest_matches_the_model_file(manifest):
    data = (PACKAGE / "model.onnx").read_bytes()
    assert hashlib.sha256(data).hexdigest() == manifest["sha256"]
    assert len(data) < 10_000_000
    assert manifest["output"] == {"format": "cpe-fcos-v1", "stride": 8}
    assert [c["name"] for c in manifest["classes"]] == [
        "firearm", "knife", "ammunition", "cigarettes", "phone", "battery", "drugs"]


def test_outputs_have_the_cpe_fcos_v1_shapes():
    sess = session(PACKAGE / "model.onnx")
    scores, ltrb = sess.run(["scores", "ltrb"], {"input": np.zeros((1, 2, 640, 640), np.float32)})
    assert scores.shape == (1, 7, 80, 80) and ltrb.shape == (1, 4, 80, 80)
    assert 0 <= scores.min() and scores.max() < 0.2  # an empty tunnel raises nothing
    assert ltrb.min() >= 0


def test_still_finds_the_threats_it_found_at_release(results):
    found = total = 0
    for truth, dets in results:
        for t in truth:
            total += 1
            found += any(d[0] == t["label"] and _iou(d[2], t["box"]) >= 0.3 for d in dets)
    print(f"found {found} of {total} example threats")
    assert total == 12 and found >= 10  # cpe-tiny 2.0.0 finds 11 of 12 (1.1.0: 8, 1.0.0: 5)


def test_every_firearm_example_alarms(results):
    firearm_bags = [dets for truth, dets in results if any(t["label"] == "firearm" for t in truth)]
    assert firearm_bags and all(any(d[0] == "firearm" for d in dets) for dets in firearm_bags)


def test_clean_example_bags_stay_mostly_quiet(results):
    clean = [dets for truth, dets in results if not truth]
    assert len(clean) >= 4 and sum(bool(d) for d in clean) <= 1
