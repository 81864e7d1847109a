"""Calibrated scores (issue 20): Platt scaling fitted on validation, stored in the manifest, applied to
the scores a detector reports while its decisions stay on the raw scores. Torch-free."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from models.errors import ManifestError
from models.manifest import load_manifest
from models.runtime import load_detector
from models.scan import Scan
from models.testgraphs import air, paint_square
from models.training.score_calibration import fit_platt, section


def _mean_calibrated(scores: np.ndarray, ab: tuple[float, float]) -> float:
    logit = np.log(scores / (1 - scores))
    return float(np.mean(1 / (1 + np.exp(-(ab[0] * logit + ab[1])))))


def test_calibrated_scores_match_how_often_boxes_are_right():
    rng = np.random.default_rng(0)
    high = rng.uniform(0.8, 0.99, 400)            # says ~90 %, right half the time
    assert _mean_calibrated(high, fit_platt(high, rng.random(400) < 0.5)) == pytest.approx(0.5, abs=0.05)
    low = rng.uniform(0.3, 0.6, 400)              # says ~45 %, right 95 % of the time
    assert _mean_calibrated(low, fit_platt(low, rng.random(400) < 0.95)) == pytest.approx(0.95, abs=0.05)
    assert fit_platt(np.array([0.9, 0.8]), np.array([True, True])) == (1.0, 0.0)   # nothing to fit


def _calibrated_package(fcos_dir: Path, tmp_path: Path, body: str) -> Path:
    pkg = tmp_path / "pkg"
    shutil.copytree(fcos_dir, pkg)
    manifest = pkg / "manifest.toml"
    manifest.write_text(manifest.read_text() + "\n" + body)
    return pkg


def test_reported_scores_are_calibrated_and_decisions_stay(fcos_dir, tmp_path):
    high, low = air(296, 200)
    paint_square(high, low, 20, 36)
    paint_square(high, low, 108, 100, "organic")
    scan = Scan(high, low)
    raw = load_detector(fcos_dir, overlap=32).detect(scan)
    body = section({"metal": (0.5, 1.0)}, range(1_500_000, 1_500_200))
    pkg = _calibrated_package(fcos_dir, tmp_path, body)
    manifest = load_manifest(pkg)
    assert manifest.calibration is not None and manifest.calibration.fitted_on == "validation seeds 1500000..1500199"
    cal = load_detector(pkg, overlap=32).detect(scan)
    assert [(d.label, d.box) for d in cal] == [(d.label, d.box) for d in raw] and len(raw) == 2
    for r, c in zip(raw, cal):
        want = r.score if r.label == "organic" else 1 / (1 + np.exp(-(0.5 * np.log(r.score / (1 - r.score)) + 1.0)))
        assert c.score == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("body, words", [
    ('[calibration]\nplatt = { gun = [1.2, 0.0] }\n', "calibration names unknown classes ['gun']"),
    ('[calibration]\nplatt = { metal = [-1.0, 0.0] }\n', "0 < a < 100"),
    ('[calibration]\nmethod = "isotonic"\n', "calibration.method"),
])
def test_a_bad_calibration_section_is_one_clear_error(fcos_dir, tmp_path, body, words):
    with pytest.raises(ManifestError) as err:
        load_manifest(_calibrated_package(fcos_dir, tmp_path, body))
    assert words in str(err.value)
