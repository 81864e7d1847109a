"""The runtime on the shipped model agrees with the trainer's independent reference decoder."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from models.runtime import load_detector
from models.scan import load_scan

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "models" / "zoo" / "cpe-tiny"
BAGS = sorted((ROOT / "examples" / "scans").glob("bag_*.npz"))

pytestmark = pytest.mark.skipif(not (PACKAGE / "manifest.toml").is_file() or not BAGS,
                                reason="no shipped cpe-tiny package or example bags")


def _rounded(dets):
    return sorted((label, round(float(score), 3), tuple(round(float(v), 1) for v in box)) for label, score, box in dets)


def test_single_tile_bags_match_the_reference_decoder():
    infer = pytest.importorskip("models.training.infer")
    manifest = tomllib.loads((PACKAGE / "manifest.toml").read_text())
    names = [c["name"] for c in manifest["classes"]]
    thresholds = np.array([c["threshold"] for c in manifest["classes"]], np.float32)
    session = infer.session(PACKAGE / "model.onnx")
    detector = load_detector(PACKAGE)
    for path in BAGS:
        scan = load_scan(path)
        scores, ltrb = session.run(["scores", "ltrb"], {"input": infer.tile_input(scan.high, scan.low)})
        reference = [(names[k], s, b) for k, s, b in infer.decode(scores[0], ltrb[0], thresholds)]
        ours = [(d.label, d.score, d.box) for d in detector.detect(scan)]
        assert _rounded(ours) == _rounded(reference), path.name
